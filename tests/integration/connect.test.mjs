// Connect RPC through idemcache (issue 5): real @connectrpc/connect-node 2.x
// servers and clients, the demo service of examples/connect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, ConnectError, Code } from '@connectrpc/connect';
import { createConnectTransport, compressionGzip } from '@connectrpc/connect-node';
import { createCatalogServer, CatalogService, DESCRIPTORS } from '../../examples/connect/catalog.mjs';
import { startProxy, tmpFile, get, rawExchange, parseResponses } from './lib.mjs';

async function setup(extraYaml = '') {
  const calls = {};
  const server = createCatalogServer(calls);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const cfg = tmpFile('connect.yaml', `connect:\n  descriptors: ${DESCRIPTORS}\n${extraYaml}`);
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${server.address().port}`, '--config', cfg]);
  const client = (opts = {}) => createClient(CatalogService, createConnectTransport({
    baseUrl: `http://127.0.0.1:${proxy.port}`, httpVersion: '1.1', ...opts,
  }));
  return {
    calls, proxy, client,
    async close() {
      const r = await proxy.stop();
      server.closeAllConnections();
      await new Promise((res) => server.close(res));
      assert.equal(r.code, 0);
    },
  };
}

const VARIANTS = [
  { name: 'GET binary', opts: { useHttpGet: true, useBinaryFormat: true } },
  { name: 'GET JSON', opts: { useHttpGet: true, useBinaryFormat: false } },
  { name: 'POST binary', opts: { useBinaryFormat: true } },
  { name: 'POST JSON', opts: { useBinaryFormat: false } },
];

test('repeated NO_SIDE_EFFECTS calls do not reach the server and decode right, in every form', async () => {
  const t = await setup();
  for (const [i, v] of VARIANTS.entries()) {
    const c = t.client(v.opts);
    const id = `item-${i}`;
    const first = await c.getItem({ id });
    const again = await c.getItem({ id });
    assert.equal(first.id, id, v.name);
    assert.equal(again.id, id, v.name);
    assert.equal(again.priceCents, 100n, v.name);
    assert.equal(again.servedBy, first.servedBy, `${v.name}: served from the cache`);
  }
  assert.equal(t.calls.getItem, 4, 'one server call per (message, codec)');
  await t.close();
});

test('a GET and the POST of the same call share one entry, both ways', async () => {
  const t = await setup();
  for (const binary of [true, false]) {
    const get1 = t.client({ useHttpGet: true, useBinaryFormat: binary });
    const post1 = t.client({ useBinaryFormat: binary });
    const a = await post1.getItem({ id: `p-${binary}` }); // POST fills ...
    const b = await get1.getItem({ id: `p-${binary}` });  // ... GET hits
    assert.equal(b.servedBy, a.servedBy);
    const c = await get1.getItem({ id: `g-${binary}` });  // GET fills ...
    const d = await post1.getItem({ id: `g-${binary}` }); // ... POST hits
    assert.equal(d.servedBy, c.servedBy);
  }
  assert.equal(t.calls.getItem, 4);
  // the codec is in the key: a JSON call never gets a binary answer
  const j = await t.client({ useBinaryFormat: false }).getItem({ id: 'p-true' });
  assert.equal(j.id, 'p-true');
  assert.equal(t.calls.getItem, 5);
  await t.close();
});

test('gzip: compressed GET and POST messages key as their content; every client can read the answer', async () => {
  const t = await setup();
  const id = 'z'.repeat(3000); // over connect's 1 KiB compression threshold
  const gz = { sendCompression: compressionGzip, acceptCompression: [compressionGzip] };
  const a = await t.client({ ...gz, useBinaryFormat: true }).getItem({ id });
  const b = await t.client({ ...gz, useBinaryFormat: true, useHttpGet: true }).getItem({ id });
  const c = await t.client({ useBinaryFormat: true, useHttpGet: true }).getItem({ id }); // no compression
  const d = await t.client({ useBinaryFormat: true }).getItem({ id });
  for (const r of [b, c, d]) {
    assert.equal(r.id, id);
    assert.equal(r.servedBy, a.servedBy);
  }
  assert.equal(t.calls.getItem, 1);
  await t.close();
});

test('mutations, IDEMPOTENT methods and streams go to the server every time', async () => {
  const t = await setup();
  const c = t.client({ useBinaryFormat: true });
  const v1 = await c.putItem({ item: { id: 'm', name: 'one' } });
  const v2 = await c.putItem({ item: { id: 'm', name: 'one' } });
  assert.equal(v1.version, 1);
  assert.equal(v2.version, 2);
  await c.countItems({ id: 'x' });
  await c.countItems({ id: 'x' });
  for (let i = 0; i < 2; i++) {
    const seen = [];
    for await (const m of c.watchItem({ id: 's' })) seen.push(m.version);
    assert.deepEqual(seen, [1, 2, 3]);
  }
  assert.deepEqual([t.calls.putItem, t.calls.countItems, t.calls.watchItem], [2, 2, 2]);
  await t.close();
});

test('errors pass through and are cached only with explicit freshness', async () => {
  const t = await setup();
  for (const v of VARIANTS) {
    const c = t.client(v.opts);
    for (let i = 0; i < 2; i++) {
      await assert.rejects(c.findItem({ id: 'missing' }), (e) => e instanceof ConnectError && e.code === Code.NotFound);
    }
  }
  assert.equal(t.calls.findItem, 8, 'no freshness: never cached');
  const c = t.client({ useBinaryFormat: false });
  for (let i = 0; i < 3; i++)
    await assert.rejects(c.findItem({ id: 'gone' }), (e) => e.code === Code.NotFound);
  assert.equal(t.calls.findItem, 9, 'the handler gave the error max-age=60');
  await t.close();
});

test('Connect GET: any query order, unknown parameters keyed, ETag and If-None-Match', async () => {
  const t = await setup();
  const path = '/idem.example.v1.CatalogService/GetItem';
  const msg = encodeURIComponent(JSON.stringify({ id: 'q' }));
  const a = await get(t.proxy.port, `${path}?encoding=json&message=${msg}&connect=v1`);
  assert.equal(a.status, 200);
  assert.match(a.headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/);
  const b = await get(t.proxy.port, `${path}?connect=v1&message=${msg}&encoding=json`);
  assert.match(b.headers['cache-status'], /^idemcache; hit/);
  // a parameter that is not Connect's is the application's: it is keyed
  const u1 = await get(t.proxy.port, `${path}?utm=x&message=${msg}&encoding=json`);
  assert.match(u1.headers['cache-status'], /fwd=uri-miss/);
  const u2 = await get(t.proxy.port, `${path}?encoding=json&utm=x&message=${msg}`);
  assert.match(u2.headers['cache-status'], /^idemcache; hit/, 'Connect parameters in any order around it');
  assert.equal(t.calls.getItem, 2);
  assert.equal(b.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(b.body), JSON.parse(a.body));
  const tag = b.headers.etag;
  assert.match(tag, /^"i-/);
  const nm = await get(t.proxy.port, `${path}?encoding=json&message=${msg}`, { headers: { 'If-None-Match': tag } });
  assert.equal(nm.status, 304);
  // base64 without padding, with padding (percent-encoded), and a POST: one entry
  const bin = Buffer.from([0x0a, 0x01, 0x71]); // GetItemRequest{id: "q"}
  const b64 = bin.toString('base64url');
  const c = await get(t.proxy.port, `${path}?encoding=proto&base64=1&message=${b64}`);
  const d = await get(t.proxy.port, `${path}?message=${b64}%3D&base64=1&encoding=proto&compression=identity`);
  assert.match(d.headers['cache-status'], /hit/);
  assert.deepEqual(d.body, c.body);
  const e = await get(t.proxy.port, path, { method: 'POST', body: bin, headers: { 'Content-Type': 'application/proto', 'Content-Length': bin.length, 'Accept-Encoding': 'gzip' } });
  assert.match(e.headers['cache-status'], /hit/);
  assert.equal(e.headers['content-encoding'], undefined, 'served as identity');
  assert.equal(t.calls.getItem, 3);
  await t.close();
});

test('the descriptor set is checked at startup; connect lists add and remove procedures', async () => {
  const bad = tmpFile('bad.binpb', 'not a descriptor set');
  const cfg = tmpFile('c.yaml', `connect:\n  descriptors: ${bad}\n`);
  const r = await rawStart(['--check-config', cfg]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /connect\.descriptors: .*not a FileDescriptorSet/);
  const t = await setup('  not_cacheable: [/idem.example.v1.CatalogService/GetItem]\n  cacheable: [/idem.example.v1.CatalogService/CountItems]\n');
  const c = t.client({ useBinaryFormat: true });
  await c.getItem({ id: 'a' });
  await c.getItem({ id: 'a' });
  await c.countItems({ id: 'a' });
  await c.countItems({ id: 'a' });
  assert.deepEqual([t.calls.getItem, t.calls.countItems], [2, 1]);
  await t.close();
});

async function rawStart(args) {
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('./lib.mjs');
  return new Promise((resolve) => {
    const p = spawn(BIN, args);
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stderr }));
  });
}

test('pipelined Connect POSTs on one connection: a hit and a miss, in order', async () => {
  const t = await setup();
  const path = '/idem.example.v1.CatalogService/GetItem';
  const body = (id) => JSON.stringify({ id });
  const req = (id) => `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${t.proxy.port}\r\nContent-Type: application/json\r\nContent-Length: ${body(id).length}\r\n\r\n${body(id)}`;
  await get(t.proxy.port, path, { method: 'POST', body: body('p1'), headers: { 'Content-Type': 'application/json', 'Content-Length': body('p1').length } });
  const r = await rawExchange(t.proxy.port, req('p1') + req('p2'), { idleMs: 300 });
  const res = parseResponses(r.data);
  assert.equal(res.length, 2);
  assert.match(res[0].headers['cache-status'], /hit/);
  assert.equal(JSON.parse(res[1].body).id, 'p2');
  await t.close();
});

// Issue 10, finding 5: a Connect GET gets the checks a Connect POST gets,
// and a query is keyed as a Connect call only where one can be.
const GET_ITEM = '/idem.example.v1.CatalogService/GetItem';
const jsonQuery = (obj, extra = '') => `encoding=json&message=${encodeURIComponent(JSON.stringify(obj))}${extra}`;

test('connect.not_cacheable and a cache: false rule apply to a Connect GET as to its POST', async (t) => {
  const s = await setup(`  not_cacheable: [${GET_ITEM}]\n  ttl: 60s\n`);
  t.after(() => s.close());
  for (const v of VARIANTS) {
    const c = s.client(v.opts);
    const a = await c.getItem({ id: 'me' }); // one user ...
    const b = await c.getItem({ id: 'me' }); // ... and the next
    assert.notEqual(b.servedBy, a.servedBy, `${v.name}: never served from the cache`);
  }
  assert.equal(s.calls.getItem, 8);
  const r = await get(s.proxy.port, `${GET_ITEM}?${jsonQuery({ id: 'me' })}`);
  assert.match(r.headers['cache-status'], /fwd=bypass; .*detail=procedure/);

  const s2 = await setup(`rules:\n  - path: "/idem.example.v1.CatalogService/*"\n    cache: false\n`);
  t.after(() => s2.close());
  const g = s2.client({ useHttpGet: true, useBinaryFormat: false });
  const x = await g.getItem({ id: 'me' });
  const y = await g.getItem({ id: 'me' });
  assert.notEqual(y.servedBy, x.servedBy, 'the rule wins over the descriptors for a GET too');
  const r2 = await get(s2.proxy.port, `${GET_ITEM}?${jsonQuery({ id: 'me' })}`);
  assert.match(r2.headers['cache-status'], /fwd=bypass; .*detail=rule/);
});

test('Connect GET: parameters that are not Connect\'s stay in the key', async (t) => {
  const s = await setup();
  t.after(() => s.close());
  const ask = (user) => get(s.proxy.port, `${GET_ITEM}?${jsonQuery({ id: 'x' }, `&user=${user}`)}`);
  const alice = JSON.parse((await ask('alice')).body);
  const bob = await ask('bob');
  assert.doesNotMatch(bob.headers['cache-status'], /hit/, 'bob is not served alice\'s entry');
  assert.notEqual(JSON.parse(bob.body).servedBy, alice.servedBy);
  assert.match((await ask('alice')).headers['cache-status'], /^idemcache; hit/);
  assert.equal(s.calls.getItem, 2);
  // spellings the server reads otherwise than a cache would are no Connect
  // key: a percent-encoded parameter name, a second encoding, base64=%31
  for (const q of [`%65ncoding=proto&${jsonQuery({ id: 'x' })}`, `${jsonQuery({ id: 'x' })}&base64=%31`]) {
    const r = await get(s.proxy.port, `${GET_ITEM}?${q}`);
    assert.doesNotMatch(r.headers['cache-status'], /hit/, q);
  }
});

test('a GET with encoding= and message= on any path is no Connect call without a cacheable procedure', async (t) => {
  const { startOrigin, startProxy: start } = await import('./lib.mjs');
  const origin = await startOrigin((req, res) => {
    const user = new URL(req.url, 'http://x').searchParams.get('user');
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(`data of ${user}`);
  });
  t.after(() => origin.close());
  const proxy = await start(['--upstream', `http://127.0.0.1:${origin.port}`]); // no connect: config
  t.after(() => proxy.stop());
  const q = jsonQuery({ id: 'x' });
  const a = await get(proxy.port, `/any/path?${q}&user=alice`);
  assert.equal(a.body.toString(), 'data of alice');
  const b = await get(proxy.port, `/any/path?${q}&user=bob`);
  assert.equal(b.body.toString(), 'data of bob', 'bob never gets alice\'s entry');
  assert.doesNotMatch(b.headers['cache-status'], /hit/);
  // an ordinary GET: cached by its whole target, as the origin allows
  assert.match((await get(proxy.port, `/any/path?${q}&user=alice`)).headers['cache-status'], /^idemcache; hit/);
  // the same on a procedure-shaped path nothing declares cacheable
  const c = await get(proxy.port, `/pkg.Svc/Get?${q}&user=carol`);
  const d = await get(proxy.port, `/pkg.Svc/Get?${q}&user=dave`);
  assert.equal(c.body.toString(), 'data of carol');
  assert.equal(d.body.toString(), 'data of dave');
  assert.equal(origin.seen.length, 4);
});

test('the naming veto applies to a Connect GET of a procedure declared cacheable', async (t) => {
  const { startOrigin, startProxy: start } = await import('./lib.mjs');
  let n = 0;
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ call: ++n }));
  });
  t.after(() => origin.close());
  const cfg = tmpFile('naming.yaml', 'connect:\n  cacheable: [/pkg.Svc/SetThing, /pkg.Svc/GetThing]\n  ttl: 60s\n');
  const proxy = await start(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(() => proxy.stop());
  const q = jsonQuery({ id: 'x' });
  const a = await get(proxy.port, `/pkg.Svc/SetThing?${q}`);
  assert.match(a.headers['cache-status'], /fwd=bypass; .*detail=naming/);
  const b = await get(proxy.port, `/pkg.Svc/SetThing?${q}`);
  assert.doesNotMatch(b.headers['cache-status'], /hit/);
  // the same spelled with an escape (the naming reads the normalized path)
  const c = await get(proxy.port, `/pkg.Svc/%53etThing?${q}`);
  assert.match(c.headers['cache-status'], /fwd=bypass; .*detail=naming/);
  // a read by its name is a Connect GET and is cached
  await get(proxy.port, `/pkg.Svc/GetThing?${q}`);
  assert.match((await get(proxy.port, `/pkg.Svc/GetThing?${q}`)).headers['cache-status'], /^idemcache; hit/);
  assert.equal(n, 4);
});
