// Attacks on the TLS layer (review of the TLS work): a large hit over TLS
// must stay bounded in memory, and an origin certificate is checked
// against its subjectAltName only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import { spawn, execFileSync } from 'node:child_process';
import { certsForTests, startTlsProxy as startTls } from './tls-lib.mjs';
import { startProxy, startOrigin, startRelay, freePort, tmpFile, sleep, get, SANITIZED } from './lib.mjs';

const C = certsForTests('attack-tls');
const read = (f) => fs.readFileSync(f);
const startTlsProxy = (args, opts) => startTls(C, args, opts);

const rssKiB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

// One GET over a fresh TLS connection, the whole body read; resolves
// { status, cacheStatus, length }.
function httpsGet(port, p, { agent = false } = {}) {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: p, headers: { host: 'a' }, servername: 'localhost', ca: read(C.ca.cert), agent },
      (res) => {
        let n = 0;
        res.on('data', (d) => { n += d.length; });
        res.on('end', () => resolve({ status: res.statusCode, cacheStatus: res.headers['cache-status'], length: n }));
      }).on('error', reject);
  });
}

// A raw TLS client: sends `req`, reads one response with Content-Length in
// full when `readAll`, else stops reading at once. Resolves the socket.
function tlsClient(port, req, { readAll }) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: read(C.ca.cert) });
    s.on('error', reject);
    s.on('secureConnect', () => {
      s.write(req);
      if (!readAll) {
        s.pause();
        resolve(s);
        return;
      }
      let buf = Buffer.alloc(0);
      let want = -1;
      let got = 0;
      const onData = (d) => {
        if (want < 0) {
          buf = Buffer.concat([buf, d]);
          const i = buf.indexOf('\r\n\r\n');
          if (i < 0) return;
          want = Number(/content-length:\s*(\d+)/i.exec(buf.subarray(0, i).toString('latin1'))[1]);
          got = buf.length - i - 4;
        } else {
          got += d.length;
        }
        if (got >= want) {
          s.off('data', onData);
          resolve(s);
        }
      };
      s.on('data', onData);
    });
  });
}

const BIG = 6 * 1024 * 1024;
const N = 16;

async function bigHitSetup(t) {
  const body = Buffer.alloc(BIG, 'x');
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.end(body);
  });
  const p = await startTlsProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const socks = [];
  t.after(async () => { for (const s of socks) s.destroy(); await p.stop(); await origin.close(); });
  // the https entry stored, then served as a hit
  assert.equal((await httpsGet(p.tlsPort, '/big')).length, BIG);
  const hit = await httpsGet(p.tlsPort, '/big');
  assert.match(hit.cacheStatus, /hit/);
  await sleep(200);
  return { p, socks };
}

// Finding: a hit is encrypted whole at once (conn_writev -> tls_out of
// every segment), and the write BIO keeps a buffer as large as the largest
// ciphertext ever queued on the connection. Clients that have read their
// 6 MiB response in full and then sit idle on keep-alive each pin ~6 MiB
// of the proxy's memory (cleartext: nothing).
test('idle keep-alive TLS connections do not keep the ciphertext of the large hit they were sent', { skip: SANITIZED, timeout: 60000 }, async (t) => {
  const { p, socks } = await bigHitSetup(t);
  const before = rssKiB(p.proc.pid);
  for (let i = 0; i < N; i++)
    socks.push(await tlsClient(p.tlsPort, 'GET /big HTTP/1.1\r\nHost: a\r\n\r\n', { readAll: true }));
  await sleep(500);
  const grown = rssKiB(p.proc.pid) - before;
  // 16 idle connections: a few hundred KiB each would be generous
  assert.ok(grown < N * 1024, `RSS grew by ${grown} KiB for ${N} idle TLS connections (${Math.round(grown / N)} KiB each)`);
});

// Finding: a client that sends one GET for a large stored object and stops
// reading makes the proxy hold the whole response encrypted (twice: the
// write BIO's buffer and the queued copy), max_object_size per connection,
// where WRITE_HIGH_WATER (256 KiB) was meant to bound the ciphertext
// queue (conn.c's header comment). Cleartext shares the stored object.
// A TLS client that stops reading: python's ssl over a socket with a
// small receive buffer (node cannot set SO_RCVBUF, and the kernel's
// autotuned buffer would otherwise take the whole response), which sends
// its request and never reads.
const STALL_PY = `
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(('127.0.0.1', int(sys.argv[1])))
t = ctx.wrap_socket(s, server_hostname='localhost')
t.sendall(b'GET /big HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n')
print('sent', flush=True)
time.sleep(60)
`;
async function stalledReader(port) {
  const child = spawn('python3', ['-c', STALL_PY, String(port), C.ca.cert], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.on('error', reject);
  });
  return child;
}

test('a TLS client that stops reading a large hit does not make the proxy hold its whole ciphertext', { skip: SANITIZED, timeout: 60000 }, async (t) => {
  const { p } = await bigHitSetup(t);
  const kids = [];
  t.after(() => { for (const k of kids) k.kill('SIGKILL'); });
  const before = rssKiB(p.proc.pid);
  for (let i = 0; i < N; i++)
    kids.push(await stalledReader(p.tlsPort));
  await sleep(3000);
  const grown = rssKiB(p.proc.pid) - before;
  // bounded by the high-water mark (256 KiB) and a record or two, per connection
  assert.ok(grown < N * 1024, `RSS grew by ${grown} KiB for ${N} stalled TLS readers (${Math.round(grown / N)} KiB each)`);
});

// Finding: the origin's name is checked with SSL_set1_host and only
// X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, so OpenSSL falls back to the
// subject CN when the certificate has no DNS name: a certificate from the
// trusted CA with CN=localhost and no subjectAltName is accepted for
// https://localhost. Browsers, Go and the CA/B baseline ignore the CN
// (RFC 6125 §6.4.4 as practiced); our own SNI choice (tls_ctx.c sni_pick)
// says it does not look at CNs. A CA that issues CN-only certificates for
// other purposes (devices, users) can thus impersonate the origin.
test('https origin: a certificate naming the host only in its subject CN (no SAN) is refused', async (t) => {
  const cdir = path.join(path.dirname(C.ca.cert), 'cn-only'); // removed with the certificates
  fs.mkdirSync(cdir, { recursive: true });
  const o = (a) => execFileSync('openssl', a, { cwd: cdir, stdio: ['ignore', 'pipe', 'pipe'] });
  o(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'cn.key']);
  o(['req', '-new', '-key', 'cn.key', '-subj', '/CN=localhost', '-out', 'cn.csr']);
  fs.writeFileSync(path.join(cdir, 'cn.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  o(['x509', '-req', '-in', 'cn.csr', '-CA', C.ca.cert, '-CAkey', C.ca.key, '-CAcreateserial', '-days', '30',
    '-sha256', '-extfile', 'cn.ext', '-out', 'cn.crt']);
  let reached = 0;
  const srv = https.createServer({ key: read(path.join(cdir, 'cn.key')), cert: read(path.join(cdir, 'cn.crt')) },
    (req, res) => { reached++; res.end('impostor'); });
  srv.on('tlsClientError', () => {});
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const p = await startProxy(['--upstream', `https://localhost:${srv.address().port}`, '--upstream-ca', C.ca.cert]);
  t.after(async () => { await p.stop(); await new Promise((r) => srv.close(r)); });
  const r = await get(p.port, '/x');
  assert.equal(r.status, 502, 'a CN-only certificate does not name the origin');
  assert.match(r.headers['cache-status'] ?? '', /detail=tls/);
  assert.equal(reached, 0);
});

// Finding 3, through the peer link: the forward side's clients ask for
// http:// URIs only (https:// is 501), but once the link to the reverse
// side is TLS the reverse side keys them https:// and tells the origin
// proto=https, the link's transport standing for the client's scheme. The
// answer (made for https) is then stored under http://... on the forward
// side and served to its cleartext clients, and on the reverse side shares

// A small hit over TLS is one record, as it is one write in clear text
// (hit-writes.test.mjs): the stored head, our fields and the body are
// gathered before encryption, not sealed as a record each (three AEAD
// passes, headers and tags for one answer).
test('a small TLS hit goes out as one TLS record', async (t) => {
  const body = 'x'.repeat(1000);
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(body);
  });
  t.after(() => origin.close());
  const p = await startTlsProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(() => p.stop());
  const relay = await startRelay(p.tlsPort);
  t.after(() => relay.close());
  const s = tls.connect({ host: '127.0.0.1', port: relay.port, servername: 'localhost', ca: read(C.ca.cert) });
  t.after(() => s.destroy());
  await new Promise((resolve, reject) => { s.once('secureConnect', resolve); s.once('error', reject); });
  let got = Buffer.alloc(0);
  s.on('data', (d) => { got = Buffer.concat([got, d]); });
  const exchange = async () => {
    got = Buffer.alloc(0);
    s.write('GET /small HTTP/1.1\r\nHost: a\r\n\r\n');
    for (;;) {
      const end = got.indexOf('\r\n\r\n');
      if (end >= 0 && got.length >= end + 4 + body.length) return got.toString('latin1');
      await sleep(5);
    }
  };
  assert.match(await exchange(), /Cache-Status: [^\r]*stored/);
  relay.reset();
  assert.match(await exchange(), /Cache-Status: idemcache; hit/);
  const down = relay.bytes().down;
  const records = [];
  for (let i = 0; i + 5 <= down.length; i += 5 + down.readUInt16BE(i + 3)) records.push(down[i]);
  assert.deepEqual(records, [23], `records (content types) for one hit: ${records.join(',')}`);
});
