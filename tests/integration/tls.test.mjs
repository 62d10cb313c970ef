// TLS end to end (issue 14, part 2): TLS listeners for clients (curl,
// node tls, connect-node over https), https origins (node https) with
// verification, session resumption and the failures that must never be
// silently accepted, and the peer link over TLS. Certificates are made at
// run time by certs.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { createCatalogServer, CatalogService, DESCRIPTORS } from '../../examples/connect/catalog.mjs';
import { makeCerts } from './certs.mjs';
import { startProxy, startOrigin, startRawOrigin, startRelay, rawExchange, freePort, tmpFile, get, sleep } from './lib.mjs';

let C; // the certificates
let dir;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-tls-'));
  C = makeCerts(path.join(dir, 'certs'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const read = (f) => fs.readFileSync(f);

// curl, asynchronously: the origins live in this process and must keep
// answering while it runs. Resolves { code, out, err }.
function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], { encoding: 'latin1' }, (e, out, err) => {
      resolve({ code: e ? (e.code ?? 1) : 0, out, err });
    });
  });
}

// A node https origin; counts full and resumed handshakes. `stall`: it
// stops reading a request body for a while after its first bytes.
async function startHttpsOrigin(handler, cert = C.server, { stall = 0 } = {}) {
  const seen = [];
  const stats = { handshakes: 0, resumed: 0 };
  const sockets = new Set();
  const server = https.createServer({ key: read(cert.key), cert: read(cert.cert) }, (req, res) => {
    const chunks = [];
    req.on('data', (d) => {
      chunks.push(d);
      if (stall && chunks.length === 1) {
        req.pause();
        setTimeout(() => req.resume(), stall);
      }
    });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers });
      handler(req, res, Buffer.concat(chunks));
    });
  });
  server.on('secureConnection', (s) => {
    stats.handshakes++;
    if (s.isSessionReused()) stats.resumed++;
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.on('tlsClientError', () => {});
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port, seen, stats,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// idemcache with a TLS listener (and its plain one from startProxy).
async function startTlsProxy(args = [], { yaml = '' } = {}) {
  const tlsPort = await freePort();
  const extra = yaml ? ['--config', tmpFile('tls.yaml', yaml)] : [];
  const p = await startProxy(['--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', C.server.cert,
    '--tls-key', C.server.key, ...extra, ...args]);
  p.tlsPort = tlsPort;
  return p;
}

// A TLS connection to the proxy; resolves the socket once secure, or the error.
function tlsConnect(port, opts = {}) {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: read(C.ca.cert), ...opts });
    s.on('secureConnect', () => resolve({ socket: s }));
    s.on('error', (error) => resolve({ error }));
  });
}

// Wait until fn() is true (no timing claims: the test deadline bounds it).
async function until(fn) {
  while (!fn()) await sleep(20);
}

test('curl over TLS: a miss then a hit on one kept-alive connection', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(`body of ${req.url}`);
  });
  const p = await startTlsProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const url = `https://127.0.0.1:${p.tlsPort}/item`;
  const r = await curl(['--http1.1', '--cacert', C.ca.cert, '-v', '-i', '-w', 'connects=%{num_connects}\n', url, url]);
  assert.equal(r.code, 0, r.err);
  const parts = r.out.split('connects=');
  assert.equal(parts.length, 3, r.out);
  assert.match(parts[0], /^HTTP\/1\.1 200/);
  assert.match(parts[0], /cache-status: idemcache; fwd=uri-miss/i);
  assert.match(parts[0], /body of \/item/);
  assert.match(parts[1], /^1\n/, 'the first request opened a connection');
  assert.match(parts[1], /cache-status: idemcache; hit/i);
  assert.match(parts[1], /body of \/item/);
  assert.match(parts[2], /^0\n/, 'the second one reused it (keep-alive over TLS)');
  assert.match(r.err, /ALPN: server accepted http\/1\.1/, 'ALPN chose http/1.1');
  assert.equal(origin.seen.length, 1);
  // the cleartext listener still works beside it
  const plain = await get(p.port, '/item');
  assert.equal(plain.status, 200);
});

test('ALPN: h2 then http/1.1 are offered (h2.enabled); with h2.enabled false a client asking h2 first gets http/1.1', async (t) => {
  const p = await startTlsProxy(['--upstream', 'http://127.0.0.1:9']);
  const off = await startTlsProxy(['--upstream', 'http://127.0.0.1:9'], { yaml: 'h2:\n  enabled: false\n' });
  t.after(async () => { await p.stop(); await off.stop(); });
  const a = await tlsConnect(p.tlsPort, { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.ifError(a.error);
  assert.equal(a.socket.alpnProtocol, 'h2');
  a.socket.destroy();
  const b = await tlsConnect(off.tlsPort, { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.ifError(b.error);
  assert.equal(b.socket.alpnProtocol, 'http/1.1');
  b.socket.destroy();
});

test('plaintext HTTP sent to a TLS port: closed, nothing forwarded, no crash', async (t) => {
  const origin = await startOrigin((req, res) => res.end('x'));
  const p = await startTlsProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const raw = await rawExchange(p.tlsPort, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.ok(!raw.toString('latin1').includes('HTTP/1.1'), 'no HTTP answer in clear text');
  assert.equal(origin.seen.length, 0, 'nothing reached the origin');
  await until(() => /client 127\.0\.0\.1: TLS handshake failed/.test(p.errors()));
  // still serving, both ways
  const r = await curl(['--cacert', C.ca.cert, `https://127.0.0.1:${p.tlsPort}/after`]);
  assert.equal(r.code, 0, r.err);
  assert.equal(origin.seen.length, 1);
});

test('a handshake that stalls is closed at timeouts.tls_handshake', async (t) => {
  const p = await startTlsProxy(['--upstream', 'http://127.0.0.1:9'],
    { yaml: 'timeouts:\n  tls_handshake: 300ms\n  client_header: 10m\n' });
  t.after(() => p.stop());
  // a TCP connection that never says hello, and one that stops half-way
  // through its ClientHello
  for (const first of ['', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03']) {
    const s = net.connect(p.tlsPort, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((r) => s.on('connect', r));
    if (first) s.write(Buffer.from(first, 'latin1'));
    await new Promise((r) => s.on('close', r)); // closed by the proxy, not by us
  }
  assert.match(p.errors(), /client 127\.0\.0\.1: TLS handshake timeout/);
});

test('limits.max_connections on a TLS listener: the connection over it is closed, logged', async (t) => {
  const p = await startTlsProxy(['--upstream', 'http://127.0.0.1:9'], { yaml: 'limits:\n  max_connections: 1\n' });
  t.after(() => p.stop());
  // the one place, once startProxy's own probe connection has let it go
  let first;
  while ((first = await tlsConnect(p.tlsPort)).error) await sleep(50);
  const held = first.socket;
  const { socket, error } = await tlsConnect(p.tlsPort);
  if (socket) socket.destroy();
  assert.ok(error, 'no TLS session past the limit');
  await until(() => /client 127\.0\.0\.1: refused, limits\.max_connections \(1\) reached/.test(p.errors()));
  held.destroy();
});

test('TLS 1.0 and 1.1 are refused', async (t) => {
  const p = await startTlsProxy(['--upstream', 'http://127.0.0.1:9']);
  t.after(() => p.stop());
  for (const v of ['-tls1', '-tls1_1']) {
    // SECLEVEL=0 so that our own openssl sends the old hello at all
    const r = await new Promise((resolve) => {
      const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${p.tlsPort}`, v,
        '-cipher', 'DEFAULT@SECLEVEL=0', '-CAfile', C.ca.cert], { encoding: 'latin1', timeout: 20000 },
      (e, out, err) => resolve({ code: e ? (e.code ?? 1) : 0, out, err }));
      child.stdin.end();
    });
    assert.notEqual(r.code, 0, `${v} must fail`);
    assert.doesNotMatch(r.out, /Verify return code: 0 \(ok\)[\s\S]*Protocol *: TLSv1(\.1)?\n/);
  }
  await until(() => (p.errors().match(/TLS handshake failed: .*(unsupported protocol|no protocols available|version too low)/g) || []).length >= 2);
  // a node client limited to TLS 1.1 fails as well
  const { error } = await tlsConnect(p.tlsPort, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
  assert.ok(error, 'no TLS 1.1 session');
});

test('SNI: a known name gets its certificate, an unknown or absent one the default', async (t) => {
  const p = await startTlsProxy(['--upstream', 'http://127.0.0.1:9'],
    { yaml: `tls:\n  certs:\n    - { cert: ${C.other.cert}, key: ${C.other.key} }\n` });
  t.after(() => p.stop());
  const subject = async (servername) => {
    const { socket, error } = await tlsConnect(p.tlsPort, { servername, rejectUnauthorized: false });
    assert.ifError(error);
    const cn = socket.getPeerCertificate().subject.CN;
    socket.destroy();
    return cn;
  };
  assert.equal(await subject('other.test'), 'other.test');
  assert.equal(await subject('unknown.test'), 'localhost', 'unknown name: the default certificate');
  assert.equal(await subject(''), 'localhost', 'no SNI: the default certificate');
});

test('https origin: verified, cached, and the TLS session resumed on the next connection', async (t) => {
  const origin = await startHttpsOrigin((req, res) => {
    res.setHeader('Cache-Control', req.url.startsWith('/fresh') ? 'max-age=60' : 'no-store');
    res.setHeader('Connection', 'close'); // every request needs a new connection
    res.end(`secure ${req.url}`);
  });
  const p = await startProxy(['--upstream', `https://127.0.0.1:${origin.port}`, '--upstream-ca', C.ca.cert]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const a = await get(p.port, '/fresh');
  assert.equal(a.status, 200);
  assert.equal(a.body.toString(), 'secure /fresh');
  const b = await get(p.port, '/fresh');
  assert.match(b.headers['cache-status'], /hit/);
  for (let i = 0; i < 3; i++) {
    const r = await get(p.port, `/other${i}`);
    assert.equal(r.body.toString(), `secure /other${i}`);
  }
  assert.equal(origin.seen.length, 4);
  assert.equal(origin.stats.handshakes, 4, 'one connection per request (Connection: close)');
  assert.equal(origin.stats.resumed, 3, 'every connection after the first resumed its session');
});

test('https origin: pooled connections are kept alive and reused', async (t) => {
  const origin = await startHttpsOrigin((req, res) => res.end(`pooled ${req.url}`));
  const p = await startProxy(['--upstream', `https://127.0.0.1:${origin.port}`, '--upstream-ca', C.ca.cert]);
  t.after(async () => { await p.stop(); await origin.close(); });
  for (let i = 0; i < 4; i++) {
    const r = await get(p.port, `/p${i}`, { headers: { 'Cache-Control': 'no-cache' } });
    assert.equal(r.body.toString(), `pooled /p${i}`);
  }
  assert.equal(origin.stats.handshakes, 1, 'one TLS connection served all four');
});

// An https request to the proxy's TLS listener, body read whole; with
// `stall`, reading stops for a while after the first bytes, so that the
// kernel's buffers fill and the proxy has to queue and wait for a drain.
function httpsRequest(port, pathName, { method = 'GET', headers = {}, body, stall = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: pathName, method, headers, ca: read(C.ca.cert), agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => {
        chunks.push(d);
        if (stall && chunks.length === 1) {
          res.pause();
          setTimeout(() => res.resume(), stall);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Larger than the loopback socket buffers plus WRITE_HIGH_WATER: both
// directions must queue ciphertext and resume on its drain (a stall here
// ends in the test's timeout).
test('large bodies both ways over TLS on both sides: every byte, in order', { timeout: 120000 }, async (t) => {
  const big = crypto.randomBytes(24 * 1024 * 1024);
  const origin = await startHttpsOrigin((req, res, body) => {
    res.setHeader('Cache-Control', 'no-store');
    if (req.method === 'POST') res.end(crypto.createHash('sha256').update(body).digest('hex'));
    else res.end(big);
  }, C.server, { stall: 500 });
  const p = await startTlsProxy(['--upstream', `https://127.0.0.1:${origin.port}`, '--upstream-ca', C.ca.cert]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const down = await httpsRequest(p.tlsPort, '/big', { stall: 500 });
  assert.equal(down.status, 200);
  assert.equal(down.body.length, big.length);
  assert.ok(down.body.equals(big), 'the download arrived intact');
  const up = await httpsRequest(p.tlsPort, '/upload', { method: 'POST', body: big, headers: { 'Content-Length': big.length } });
  assert.equal(up.status, 200);
  assert.equal(up.body.toString(), crypto.createHash('sha256').update(big).digest('hex'), 'the upload arrived intact');
});

// Each bad certificate: 502, Cache-Status detail=tls, an error line naming
// the reason, and the origin never sees the request.
for (const [name, certOf, yaml, reason] of [
  ['an unknown CA', () => C.unknownCaServer, '', /unable to get local issuer certificate|unknown ca|self.signed/i],
  ['a wrong name', () => C.wrongName, 'upstream_tls:\n  sni: localhost\n', /hostname mismatch/i],
  ['a wrong IP address', () => C.wrongName, '', /IP address mismatch/i],
  ['an expired certificate', () => C.expired, '', /certificate has expired/i],
]) {
  test(`https origin with ${name}: 502 detail=tls, logged, never accepted`, async (t) => {
    const origin = await startHttpsOrigin((req, res) => res.end('must not be served'), certOf());
    const args = ['--upstream', `https://127.0.0.1:${origin.port}`, '--upstream-ca', C.ca.cert];
    if (yaml) args.push('--config', tmpFile('up.yaml', yaml));
    const p = await startProxy(args);
    t.after(async () => { await p.stop(); await origin.close(); });
    const r = await get(p.port, '/x');
    assert.equal(r.status, 502);
    assert.match(r.headers['cache-status'], /; detail=tls/);
    assert.doesNotMatch(r.body.toString(), /must not be served/);
    assert.equal(origin.seen.length, 0, 'the request never went to that origin');
    assert.match(p.errors(), /\[error\] upstream 127\.0\.0\.1:\d+: TLS handshake failed: certificate verify failed: /);
    assert.match(p.errors(), reason);
  });
}

test('an https origin that never finishes its handshake: 504 detail=tls at timeouts.tls_handshake', async (t) => {
  const origin = await startRawOrigin(() => {}); // accepts, then says nothing
  const p = await startProxy(['--upstream', `https://127.0.0.1:${origin.port}`, '--upstream-ca', C.ca.cert,
    '--config', tmpFile('up.yaml', 'timeouts:\n  tls_handshake: 300ms\n  upstream_first_byte: 10m\n')]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const r = await get(p.port, '/x');
  assert.equal(r.status, 504);
  assert.match(r.headers['cache-status'], /; detail=tls/);
  assert.match(p.errors(), /upstream 127\.0\.0\.1:\d+: TLS handshake timeout/);
});

test('an https origin that closes during the handshake: 502 detail=tls, logged', async (t) => {
  const origin = await startRawOrigin((s) => s.end()); // a FIN for a ClientHello
  const p = await startProxy(['--upstream', `https://127.0.0.1:${origin.port}`, '--upstream-ca', C.ca.cert]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const r = await get(p.port, '/x');
  assert.equal(r.status, 502);
  assert.match(r.headers['cache-status'], /; detail=tls/);
  assert.match(p.errors(), /TLS handshake failed: connection closed during the handshake/);
});

// A TLS origin answering every request with a close-delimited response
// (no Content-Length, no chunking), then ending the connection with a
// close_notify (`clean`) or with a bare FIN after the last byte.
async function startCloseDelimitedOrigin(clean) {
  let requests = 0;
  const sockets = new Set();
  const server = tls.createServer({ key: read(C.server.key), cert: read(C.server.cert) }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let head = '';
    s.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      requests++;
      s.write('HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nConnection: close\r\n\r\n' +
        'x'.repeat(5000), () => {
        if (clean) s.end(); // close_notify, then FIN
        else s.destroy(); // a FIN alone
      });
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    get requests() { return requests; },
    async close() {
      for (const x of sockets) x.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

test('https origin, close-delimited body: complete with close_notify, truncated without (RFC 9112 §9.8)', async (t) => {
  for (const clean of [true, false]) {
    const origin = await startCloseDelimitedOrigin(clean);
    const p = await startProxy(['--upstream', `https://127.0.0.1:${origin.port}`, '--upstream-ca', C.ca.cert]);
    try {
      const r = await new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: p.port, path: '/cd', agent: false }, (res) => {
          let n = 0;
          res.on('data', (d) => { n += d.length; });
          res.on('end', () => resolve({ status: res.statusCode, n, complete: res.complete }));
          res.on('error', () => resolve({ status: res.statusCode, n, complete: false }));
          res.on('aborted', () => resolve({ status: res.statusCode, n, complete: false }));
        });
        req.on('error', (e) => resolve({ error: e }));
      });
      const again = await get(p.port, '/cd').catch((e) => ({ error: e }));
      if (clean) {
        assert.equal(r.status, 200);
        assert.ok(r.complete, 'a close_notify ends the body');
        assert.equal(r.n, 5000);
        assert.match(again.headers['cache-status'], /hit/, 'and it was stored');
        assert.equal(origin.requests, 1);
      } else {
        assert.ok(r.error || !r.complete, 'the client sees the body was cut');
        assert.equal(origin.requests, 2, 'nothing truncated was stored');
        assert.match(p.errors(), /connection closed early: connection closed without close_notify/);
      }
    } finally {
      await p.stop();
      await origin.close();
    }
  }
});

test('https origin with verify: false is used as it is, after the startup warning', async (t) => {
  const origin = await startHttpsOrigin((req, res) => res.end('unverified'), C.unknownCaServer);
  const p = await startProxy(['--upstream', `https://127.0.0.1:${origin.port}`,
    '--config', tmpFile('up.yaml', 'upstream_tls:\n  verify: false\n')]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const r = await get(p.port, '/x');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'unverified');
});

test('a connect-node client over https through the TLS listener', async (t) => {
  const calls = {};
  const server = createCatalogServer(calls);
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const p = await startTlsProxy(['--upstream', `http://127.0.0.1:${server.address().port}`],
    { yaml: `connect:\n  descriptors: ${DESCRIPTORS}\n` });
  t.after(async () => {
    await p.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const client = createClient(CatalogService, createConnectTransport({
    baseUrl: `https://127.0.0.1:${p.tlsPort}`, httpVersion: '1.1', nodeOptions: { ca: read(C.ca.cert) },
  }));
  const a = await client.getItem({ id: 'tls-1' });
  const b = await client.getItem({ id: 'tls-1' });
  assert.equal(a.id, 'tls-1');
  assert.equal(b.servedBy, a.servedBy, 'the second call came from the cache');
  assert.equal(calls.getItem, 1);
});

test('the peer link over TLS: forward --peer https:// to the reverse side\'s TLS listener', async (t) => {
  const secret = tmpFile('peer.secret', 'a-long-shared-secret-for-the-tests\n');
  const body = JSON.stringify({ items: Array.from({ length: 300 }, (_, i) => ({ id: i, name: `item ${i}` })) });
  const origin = await startOrigin((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'max-age=0');
    res.end(body);
  });
  const reverse = await startTlsProxy(['--upstream', `http://127.0.0.1:${origin.port}`],
    { yaml: `peers:\n  - id: edge-1\n    secret_file: ${secret}\n` });
  const link = await startRelay(reverse.tlsPort); // counts the ciphertext both ways
  const forward = await startProxy(['--mode', 'forward', '--peer', `https://127.0.0.1:${link.port}`,
    '--peer-id', 'edge-1', '--peer-secret', secret,
    '--config', tmpFile('fwd.yaml', `peer_tls:\n  ca: ${C.ca.cert}\n`)]);
  t.after(async () => {
    await forward.stop();
    await reverse.stop();
    await link.close();
    await origin.close();
  });
  const first = await get(forward.port, 'http://origin.test/doc');
  assert.equal(first.status, 200);
  assert.equal(first.body.toString(), body);
  assert.ok(link.counts.down > body.length, 'the first answer crosses whole');
  for (let i = 0; i < 2; i++) {
    link.reset();
    const r = await get(forward.port, 'http://origin.test/doc');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), body, 'byte for byte');
    // an unchanged body comes back as a reference, TLS records and all
    assert.ok(link.counts.down < 2000, `reference over TLS: ${link.counts.down} bytes came back`);
  }
  assert.doesNotMatch(reverse.errors() + forward.errors(), /TLS handshake failed/);
});

test('the peer link over TLS refuses a reverse side whose certificate it cannot verify', async (t) => {
  const secret = tmpFile('peer.secret', 'a-long-shared-secret-for-the-tests\n');
  const origin = await startOrigin((req, res) => res.end('x'));
  const tlsPort = await freePort();
  const reverse = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`,
    '--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', C.unknownCaServer.cert,
    '--tls-key', C.unknownCaServer.key,
    '--config', tmpFile('rev.yaml', `peers:\n  - id: edge-1\n    secret_file: ${secret}\n`)]);
  const forward = await startProxy(['--mode', 'forward', '--peer', `https://127.0.0.1:${tlsPort}`,
    '--peer-id', 'edge-1', '--peer-secret', secret,
    '--config', tmpFile('fwd.yaml', `peer_tls:\n  ca: ${C.ca.cert}\n`)]);
  t.after(async () => {
    await forward.stop();
    await reverse.stop();
    await origin.close();
  });
  const r = await get(forward.port, 'http://origin.test/doc');
  assert.equal(r.status, 502);
  assert.equal(origin.seen.length, 0);
  assert.match(forward.errors(), /TLS handshake failed: certificate verify failed/);
});
