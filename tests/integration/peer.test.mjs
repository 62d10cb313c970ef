// The digest handshake (issue 6): client -> forward idemcache -> link (a
// byte-counting relay) -> reverse idemcache -> origin, all real sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startProxy, startOrigin, startRelay, get, tmpFile, freePort } from './lib.mjs';

const SECRET = tmpFile('peer.secret', 'a-long-shared-secret-for-the-tests\n');
const ORIGIN = 'http://origin.test';

// A 20 KiB JSON document; `edits` changes two fields of it.
function doc(edits = 0) {
  const items = Array.from({ length: 300 }, (_, i) => ({ id: i, name: `item number ${i}`, price: (i * 37) % 1000, tags: ['a', 'b', `t${i % 7}`] }));
  const d = { version: 1 + edits, updated: edits ? '2026-11-26T10:00:00Z' : '2026-11-25T10:00:00Z', items };
  return JSON.stringify(d);
}

async function topology({ reverseArgs = [], forwardYaml = '' } = {}) {
  const state = { edits: 0, seen: [] };
  const origin = await startOrigin((req, res, body) => {
    state.seen.push({ method: req.method, url: req.url, headers: req.headers, body });
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'max-age=0'); // revalidated every time
    res.end(req.method === 'POST' ? doc(state.edits) + crypto.createHash('sha256').update(body).digest('hex') : doc(state.edits));
  });
  const reverseCfg = tmpFile('reverse.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`);
  const startReverse = (port) => startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`, ...reverseArgs], { port });
  let reverse = await startReverse();
  const link = await startRelay(reverse.port);
  const forwardCfg = tmpFile('forward.yaml', `rules:\n  - { path: "/api/*", methods: [POST], cache: true }\n${forwardYaml}`);
  const forward = await startProxy(['--mode', 'forward', '--config', forwardCfg, '--peer', `http://127.0.0.1:${link.port}`,
    '--peer-id', 'edge-1', '--peer-secret', SECRET]);
  const t = {
    state, origin, link, forward,
    get reverse() { return reverse; },
    get: (path, opts) => get(forward.port, `${ORIGIN}${path}`, opts),
    post: (path, body, headers = {}) => get(forward.port, `${ORIGIN}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers } }),
    async restartReverse() {
      // same port: the link reconnects to the new process, with a new epoch
      const port = reverse.port;
      await reverse.stop();
      reverse = await startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`, ...reverseArgs], { port });
    },
    async close() {
      for (const p of [forward, reverse]) assert.equal((await p.stop()).code, 0);
      await link.close();
      await origin.close();
    },
  };
  return t;
}

test('an identical response crosses the link as a reference; a changed one as dcz', async () => {
  const t = await topology();
  const first = await t.get('/doc');
  assert.equal(first.body.toString(), doc(0));
  assert.ok(t.link.counts.down > 20000, 'the first response crosses whole');
  for (let i = 0; i < 3; i++) {
    t.link.reset();
    const r = await t.get('/doc');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), doc(0), 'byte for byte what the origin sent');
    assert.ok(t.link.counts.down < 1000, `reference: ${t.link.counts.down} bytes came back`);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers['idem-digest'], undefined, 'clients never see the handshake');
  }
  t.state.edits = 1;
  t.link.reset();
  const changed = await t.get('/doc');
  assert.equal(changed.body.toString(), doc(1));
  assert.ok(t.link.counts.down < 1500, `dcz: ${t.link.counts.down} bytes for a 20 KiB body with two fields changed`);
  // the origin saw none of it
  for (const s of t.state.seen) {
    assert.equal(s.headers['available-dictionary'], undefined);
    assert.ok(!Object.keys(s.headers).some((k) => k.startsWith('idem-')));
    assert.ok(!/idem-ref|dcz/.test(s.headers['accept-encoding'] || ''));
  }
  assert.equal(t.state.seen.length, 5, 'max-age=0: every request reached the origin');
  await t.close();
});

test('a repeated request body crosses the link as a reference; the origin gets it whole', async () => {
  const t = await topology();
  const body = JSON.stringify({ query: 'orders', filter: 'x'.repeat(2000) });
  const sha = crypto.createHash('sha256').update(body).digest('hex');
  const a = await t.post('/api/search', body);
  assert.ok(a.body.toString().endsWith(sha));
  for (let i = 0; i < 3; i++) {
    t.link.reset();
    const r = await t.post('/api/search', body);
    assert.equal(r.status, 200);
    assert.ok(r.body.toString().endsWith(sha), 'the origin got the body byte for byte');
    assert.ok(t.link.counts.up < 1200, `reference: ${t.link.counts.up} bytes went up for a 2 KiB body`);
    assert.ok(t.link.counts.down < 1200, `and ${t.link.counts.down} came down`);
  }
  for (const s of t.state.seen) {
    assert.equal(s.body.toString(), body);
    assert.equal(s.headers['content-encoding'], undefined);
  }
  await t.close();
});

test('a restarted reverse side: references are refused once (415), resent whole, no client error', async () => {
  const t = await topology();
  const body = JSON.stringify({ q: 'y'.repeat(2000) });
  await t.post('/api/r', body);
  await t.post('/api/r', body);
  await t.get('/doc');
  await t.restartReverse();
  const r = await t.post('/api/r', body);
  assert.equal(r.status, 200);
  assert.equal(t.state.seen.at(-1).body.toString(), body);
  const g = await t.get('/doc');
  assert.equal(g.status, 200);
  assert.equal(g.body.toString(), doc(0));
  // and references work again against the new store
  await t.post('/api/r', body);
  t.link.reset();
  await t.post('/api/r', body);
  assert.ok(t.link.counts.up < 1200);
  await t.close();
});

test('only verified peers get peer treatment; clients cannot inject the handshake', async () => {
  const t = await topology();
  // straight to the reverse side, with a forged signature: 401
  const forged = await get(t.reverse.port, '/doc', { headers: { 'Idem-Peer': 'id=edge-1, ts=1, sig=AAAA' } });
  assert.equal(forged.status, 401);
  const unknown = await get(t.reverse.port, '/doc', { headers: { 'Idem-Peer': `id=nobody, ts=${Math.floor(Date.now() / 1000)}, sig=x` } });
  assert.equal(unknown.status, 401);
  // an ordinary client of the reverse side: Available-Dictionary and Idem-* never reach the origin
  await get(t.reverse.port, '/doc', { headers: { 'Available-Dictionary': ':AAAA:', 'Accept-Encoding': 'idem-ref, dcz', 'Idem-Store': 'x' } });
  const seen = t.state.seen.at(-1);
  assert.equal(seen.headers['available-dictionary'], undefined);
  assert.equal(seen.headers['idem-store'], undefined);
  // a client of the forward side cannot pass its own handshake fields along
  await t.get('/doc', { headers: { 'Idem-Peer': 'id=evil, ts=1, sig=x', 'Available-Dictionary': ':AAAA:' } });
  assert.equal(t.state.seen.at(-1).headers['idem-peer'], undefined);
  // nor the handshake's coding: a body it calls a reference is refused
  const n = t.state.seen.length;
  const ref = await t.post('/api/x', '{}', { 'Content-Encoding': 'idem-ref' });
  assert.equal(ref.status, 415);
  assert.equal(t.state.seen.length, n, 'nothing reached the origin');
  await t.close();
});

test('a wrong secret is refused, and the forward side says so', async () => {
  const origin = await startOrigin((req, res) => res.end('x'));
  const reverse = await startProxy(['--config', tmpFile('r.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`), '--upstream', `http://127.0.0.1:${origin.port}`]);
  const other = tmpFile('other.secret', 'another-secret-entirely-different');
  const forward = await startProxy(['--mode', 'forward', '--peer', `http://127.0.0.1:${reverse.port}`, '--peer-id', 'edge-1', '--peer-secret', other]);
  const r = await get(forward.port, `${ORIGIN}/x`);
  assert.equal(r.status, 401);
  assert.match(forward.errors(), /refused our signature/);
  for (const p of [forward, reverse]) assert.equal((await p.stop()).code, 0);
  await origin.close();
});
