// HTTP/2 toward clients (issue 15) with real clients: node:http2 over h2c
// (prior knowledge) and over TLS (ALPN h2), curl --http2-prior-knowledge
// and --http2, connect-node with httpVersion "2". Origins stay HTTP/1.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { createCatalogServer, CatalogService, DESCRIPTORS } from '../../examples/connect/catalog.mjs';
import { startProxy, startOrigin, tmpFile, get } from './lib.mjs';
import { certsForTests, startTlsProxy } from './tls-lib.mjs';

const certs = certsForTests('h2');

// An origin that counts requests per method and URL, echoes what it got.
async function countingOrigin() {
  const counts = {};
  const origin = await startOrigin((req, res, body) => {
    const k = `${req.method} ${req.url}`;
    counts[k] = (counts[k] || 0) + 1;
    if (req.url.startsWith('/nocache')) res.setHeader('Cache-Control', 'no-store');
    else res.setHeader('Cache-Control', 'max-age=60');
    res.setHeader('Content-Type', 'text/plain');
    res.setHeader('X-Seen-Host', req.headers.host || '');
    res.setHeader('X-Seen-Cookie', req.headers.cookie || '');
    res.setHeader('X-Seen-Length', String(body.length));
    res.setHeader('X-Seen-Framing', req.headers['transfer-encoding'] ? 'chunked' : (req.headers['content-length'] !== undefined ? 'length' : 'none'));
    res.setHeader('Connection', 'keep-alive');
    res.end(req.url.startsWith('/big') ? 'x'.repeat(100000) : `${k} #${counts[k]}`);
  });
  return { origin, counts };
}

// One request on an http2 session; resolves { status, headers, body }.
function h2request(session, headers, body) {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    const chunks = [];
    let head;
    req.on('response', (h) => { head = h; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve({ status: head && head[':status'], headers: head, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

function connect(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const s = http2.connect(url, opts);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function curl(args) {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '-i', '--max-time', '10', ...args], { encoding: 'latin1' }, (err, stdout) => {
      if (err) return reject(err);
      const at = stdout.indexOf('\r\n\r\n');
      const [status, ...lines] = stdout.slice(0, at).split('\r\n');
      const headers = {};
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      resolve({ version: status.split(' ')[0], status: Number(status.split(' ')[1]), headers, body: stdout.slice(at + 4) });
    });
  });
}

test('h2c prior knowledge: a miss, then a hit from the store; :authority is the origin Host; cookie crumbs joined', async (t) => {
  const { origin, counts } = await countingOrigin();
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const s = await connect(`http://127.0.0.1:${p.port}`);
  t.after(async () => { s.close(); await p.stop(); await origin.close(); });
  const a = await h2request(s, { ':path': '/a', ':authority': 'api.test' });
  assert.equal(a.status, 200);
  assert.equal(a.body.toString(), 'GET /a #1');
  assert.match(a.headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/);
  assert.equal(a.headers['x-seen-host'], 'api.test');
  assert.equal(a.headers.connection, undefined, 'no connection-specific field in h2 (RFC 9113 §8.2.2)');
  const b = await h2request(s, { ':path': '/a', ':authority': 'api.test' });
  assert.equal(b.body.toString(), 'GET /a #1');
  assert.match(b.headers['cache-status'], /hit/);
  assert.equal(b.headers['content-length'], '9');
  // cookie crumbs (RFC 9113 §8.2.3) are one field for the HTTP/1.1 origin
  const c = await h2request(s, { ':path': '/nocache/c', ':authority': 'api.test', cookie: ['a=1', 'b=2'] });
  assert.equal(c.headers['x-seen-cookie'], 'a=1; b=2');
  assert.equal(counts['GET /a'], 1);
  const log = p.access();
  assert.equal(log.length, 3);
});

test('h2c: request bodies with and without content-length reach the origin whole; 100 KiB responses relayed', async (t) => {
  const { origin } = await countingOrigin();
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const s = await connect(`http://127.0.0.1:${p.port}`);
  t.after(async () => { s.close(); await p.stop(); await origin.close(); });
  const body = Buffer.alloc(700000, 'b'); // past the stream window: flow control gives it back as the origin reads
  const a = await h2request(s, { ':method': 'POST', ':path': '/nocache/p', 'content-length': String(body.length) }, body);
  assert.equal(a.status, 200, JSON.stringify(a.headers) + a.body.toString());
  assert.equal(a.headers['x-seen-length'], String(body.length));
  assert.equal(a.headers['x-seen-framing'], 'length');
  const b = await h2request(s, { ':method': 'POST', ':path': '/nocache/q' }, body);
  assert.equal(b.headers['x-seen-length'], String(body.length));
  assert.equal(b.headers['x-seen-framing'], 'chunked', 'no content-length: chunked to the HTTP/1.1 origin');
  const big = await h2request(s, { ':path': '/big' });
  assert.equal(big.body.length, 100000);
  const big2 = await h2request(s, { ':path': '/big' });
  assert.equal(big2.body.length, 100000);
  assert.match(big2.headers['cache-status'], /hit/);
  const head = await h2request(s, { ':method': 'HEAD', ':path': '/big' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
});

test('100 concurrent streams on one connection are all answered', async (t) => {
  const { origin } = await countingOrigin();
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const s = await connect(`http://127.0.0.1:${p.port}`);
  t.after(async () => { s.close(); await p.stop(); await origin.close(); });
  const all = await Promise.all(Array.from({ length: 100 }, (_, i) =>
    h2request(s, { ':path': `/${i % 2 ? 'nocache/' : ''}s${i % 10}` })));
  for (const [i, r] of all.entries()) {
    assert.equal(r.status, 200, `stream ${i}`);
    assert.match(r.body.toString(), new RegExp(`^GET /(nocache/)?s${i % 10} #`));
  }
  assert.equal(s.destroyed, false);
});

test('h1 and h2 clients share one stored object, both ways', async (t) => {
  const { origin, counts } = await countingOrigin();
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const s = await connect(`http://127.0.0.1:${p.port}`);
  t.after(async () => { s.close(); await p.stop(); await origin.close(); });
  const h1 = await get(p.port, '/shared1', { headers: { host: `127.0.0.1:${p.port}` } });
  const h2 = await h2request(s, { ':path': '/shared1' });
  assert.match(h2.headers['cache-status'], /hit/);
  assert.equal(h2.body.toString(), h1.body.toString());
  const h2b = await h2request(s, { ':path': '/shared2' });
  const h1b = await get(p.port, '/shared2', { headers: { host: `127.0.0.1:${p.port}` } });
  assert.match(h1b.headers['cache-status'], /hit/);
  assert.equal(h1b.body.toString(), h2b.body.toString());
  assert.deepEqual([counts['GET /shared1'], counts['GET /shared2']], [1, 1]);
});

test('TLS: ALPN h2 for node:http2 and curl --http2; http/1.1 still offered on the same port', async (t) => {
  const { origin, counts } = await countingOrigin();
  const p = await startTlsProxy(certs, ['--upstream', `http://127.0.0.1:${origin.port}`]);
  const s = await connect(`https://localhost:${p.tlsPort}`, { ca: fs.readFileSync(certs.ca.cert) });
  t.after(async () => { s.close(); await p.stop(); await origin.close(); });
  assert.equal(s.alpnProtocol, 'h2');
  const a = await h2request(s, { ':path': '/t' });
  assert.equal(a.body.toString(), 'GET /t #1');
  const b = await curl(['--http2', '--cacert', certs.ca.cert, `https://localhost:${p.tlsPort}/t`]);
  assert.equal(b.version, 'HTTP/2');
  assert.match(b.headers['cache-status'], /hit/);
  const c = await curl(['--http1.1', '--cacert', certs.ca.cert, `https://localhost:${p.tlsPort}/t`]);
  assert.equal(c.version, 'HTTP/1.1');
  assert.match(c.headers['cache-status'], /hit/);
  assert.equal(counts['GET /t'], 1);
});

test('curl --http2-prior-knowledge: GET, POST; h2.enabled false answers the preface as HTTP/1 (505)', async (t) => {
  const { origin } = await countingOrigin();
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const off = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`,
    '--config', tmpFile('h2-off.yaml', 'h2:\n  enabled: false\n')]);
  t.after(async () => { await p.stop(); await off.stop(); await origin.close(); });
  const a = await curl(['--http2-prior-knowledge', `http://127.0.0.1:${p.port}/c`]);
  assert.equal(a.version, 'HTTP/2');
  assert.equal(a.body, 'GET /c #1');
  const b = await curl(['--http2-prior-knowledge', '-d', 'x=1', `http://127.0.0.1:${p.port}/nocache/d`]);
  assert.equal(b.headers['x-seen-length'], '3');
  const c = await curl(['--http2-prior-knowledge', `http://127.0.0.1:${off.port}/c`]).catch((e) => e);
  assert.ok(c instanceof Error || c.status === 505, 'no h2 without h2.enabled');
  const d = await curl([`http://127.0.0.1:${off.port}/c`]);
  assert.equal(d.status, 200);
});

test('connect-node over h2: GET and POST of one call share one entry', async (t) => {
  const calls = {};
  const server = createCatalogServer(calls);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const cfg = tmpFile('h2-connect.yaml', `connect:\n  descriptors: ${DESCRIPTORS}\n`);
  const p = await startProxy(['--upstream', `http://127.0.0.1:${server.address().port}`, '--config', cfg]);
  t.after(async () => {
    await p.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const client = (opts) => createClient(CatalogService, createConnectTransport({
    baseUrl: `http://127.0.0.1:${p.port}`, httpVersion: '2', ...opts,
  }));
  const post = client({ useBinaryFormat: true });
  const viaGet = client({ useBinaryFormat: true, useHttpGet: true });
  const a = await post.getItem({ id: 'h2-a' });
  const b = await viaGet.getItem({ id: 'h2-a' });
  assert.equal(b.servedBy, a.servedBy);
  const c = await viaGet.getItem({ id: 'h2-b' });
  const d = await post.getItem({ id: 'h2-b' });
  assert.equal(d.servedBy, c.servedBy);
  assert.equal(calls.getItem, 2);
  assert.ok(p.access().every((l) => l.status === 200));
});

test('native gRPC (application/grpc) is answered 415 with grpc-status 12; gRPC-web goes through', async (t) => {
  const { origin } = await countingOrigin();
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const s = await connect(`http://127.0.0.1:${p.port}`);
  t.after(async () => { s.close(); await p.stop(); await origin.close(); });
  const msg = Buffer.from([0, 0, 0, 0, 0]); // an empty length-prefixed message
  const a = await h2request(s, { ':method': 'POST', ':path': '/pkg.S/M', 'content-type': 'application/grpc', te: 'trailers' }, msg);
  assert.equal(a.status, 415);
  assert.equal(a.headers['grpc-status'], '12');
  assert.match(a.body.toString(), /gRPC-web or Connect/);
  const b = await h2request(s, { ':method': 'POST', ':path': '/nocache/web', 'content-type': 'application/grpc-web+proto' }, msg);
  assert.equal(b.status, 200);
  assert.deepEqual(origin.seen.map((x) => x.url), ['/nocache/web']);
});

test('SIGTERM: GOAWAY(NO_ERROR) on an h2 connection, the stream in flight finishes, the process exits 0', async (t) => {
  const origin = await startOrigin(async (req, res) => {
    await new Promise((r) => setTimeout(r, 300));
    res.setHeader('Cache-Control', 'no-store');
    res.end('late but whole');
  });
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const s = await connect(`http://127.0.0.1:${p.port}`);
  let goaway;
  s.on('goaway', (code) => { goaway = code; });
  s.on('error', () => {});
  t.after(async () => { s.destroy(); await origin.close(); });
  const inflight = h2request(s, { ':path': '/slow' });
  while (!origin.seen.length) await new Promise((r) => setTimeout(r, 10)); // it reached the origin
  p.proc.kill('SIGTERM');
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'late but whole');
  assert.equal(goaway, http2.constants.NGHTTP2_NO_ERROR, 'GOAWAY came first');
  // the drain ends by itself: no second signal (stop() would send one)
  const exit = await p.exited;
  assert.equal(exit.code, 0);
  await p.stop(); // the sanitizer report check
});
