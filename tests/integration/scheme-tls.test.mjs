// The scheme in cache keys and forwarding fields over a real TLS listener
// (issue 14): the same path asked over the plain and the TLS listener is two
// entries; an origin-form PURGE removes both; an unsafe request over https
// invalidates the https entry only (RFC 9111 §4.4: same origin is same
// scheme); the origin is told proto=https. curl speaks TLS with --cacert;
// certificates are made at run time (certs.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startProxy, startOrigin, get, freePort, tmpFile } from './lib.mjs';
import { makeCerts } from './certs.mjs';

const certs = makeCerts(fs.mkdtempSync(path.join(os.tmpdir(), 'idem-scheme-tls-')));
const HOST = 'a.test'; // one authority for both listeners: only the scheme differs

// curl, asynchronously (the origin runs in this process); -i: status and fields.
function curl(args) {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '-i', '--max-time', '10', '--cacert', certs.ca.cert, '-H', `Host: ${HOST}`, ...args],
      { encoding: 'latin1' }, (err, stdout) => {
        if (err) return reject(err);
        // a 100 Continue may come first: take the last head
        const parts = stdout.split('\r\n\r\n');
        let i = 0;
        while (i + 1 < parts.length && /^HTTP\/\S+ 1\d\d/.test(parts[i])) i++;
        const [status, ...lines] = parts[i].split('\r\n');
        const headers = {};
        for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
        resolve({ status: Number(status.split(' ')[1]), headers, body: parts.slice(i + 1).join('\r\n\r\n') });
      });
  });
}

async function setup(t) {
  const counts = {};
  const origin = await startOrigin((req, res) => {
    const k = `${req.method} ${req.url} ${req.headers['x-forwarded-proto']}`;
    counts[k] = (counts[k] || 0) + 1;
    res.setHeader('Cache-Control', 'max-age=60');
    if (req.headers['x-location']) res.setHeader('Location', req.headers['x-location']);
    res.end(`${k} #${counts[k]}`);
  });
  const tls = await freePort();
  const admin = await freePort();
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${admin}`,
    '--tls-listen', `127.0.0.1:${tls}`, '--tls-cert', certs.server.cert, '--tls-key', certs.server.key,
    '--config', tmpFile('s.yaml', 'proxy:\n  forwarded: true\n')]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  return {
    origin, counts, admin,
    plain: (p, args = []) => curl([...args, `http://127.0.0.1:${proxy.port}${p}`]),
    https: (p, args = []) => curl([...args, `https://127.0.0.1:${tls}${p}`]),
  };
}

test('the same path over the plain and the TLS listener is two entries; the origin is told the scheme', async (t) => {
  const s = await setup(t);
  const a = await s.plain('/s');
  assert.equal(a.status, 200);
  assert.match(a.headers['cache-status'], /fwd=uri-miss; fwd-status=200; .*stored/);
  assert.match((await s.plain('/s')).headers['cache-status'], /; hit/);
  const b = await s.https('/s');
  assert.equal(b.status, 200);
  assert.match(b.headers['cache-status'], /fwd=uri-miss/, 'https://a.test/s is not http://a.test/s');
  assert.equal(b.body, 'GET /s https #1');
  const c = await s.https('/s');
  assert.match(c.headers['cache-status'], /; hit/);
  assert.equal(c.body, 'GET /s https #1');
  assert.equal((await s.plain('/s')).body, 'GET /s http #1');
  assert.deepEqual(s.counts, { 'GET /s http': 1, 'GET /s https': 1 });
  const seen = s.origin.seen.find((x) => x.headers['x-forwarded-proto'] === 'https');
  assert.equal(seen.headers.forwarded, 'for=127.0.0.1;proto=https');
  // a client over TLS cannot make the origin believe http, nor one over cleartext https
  await s.https('/spoof', ['-H', 'X-Forwarded-Proto: http']);
  await s.plain('/spoof', ['-H', 'X-Forwarded-Proto: https']);
  assert.deepEqual([s.counts['GET /spoof https'], s.counts['GET /spoof http']], [1, 1]);
});

test('an origin-form PURGE removes the entries of both schemes; an absolute-form one only its own', async (t) => {
  const s = await setup(t);
  for (const f of [s.plain, s.https]) { await f('/p'); await f('/q'); }
  const p = await get(s.admin, '/p', { method: 'PURGE', headers: { Host: HOST } });
  assert.equal(p.status, 200);
  assert.deepEqual(JSON.parse(p.body), { purged: 2, key: `//${HOST}/p` });
  assert.match((await s.plain('/p')).headers['cache-status'], /fwd=uri-miss/);
  assert.match((await s.https('/p')).headers['cache-status'], /fwd=uri-miss/);
  const q = await get(s.admin, `https://${HOST}/q`, { method: 'PURGE' });
  assert.deepEqual(JSON.parse(q.body), { purged: 1, key: `https://${HOST}/q` });
  assert.match((await s.https('/q')).headers['cache-status'], /fwd=uri-miss/);
  assert.match((await s.plain('/q')).headers['cache-status'], /; hit/, 'the http entry stays');
});

test('an unsafe request over https invalidates the https entry, not the http one', async (t) => {
  const s = await setup(t);
  for (const f of [s.plain, s.https]) { await f('/u'); await f('/l'); }
  const post = await s.https('/u', ['-X', 'POST', '--data', 'x', '-H', `X-Location: https://${HOST}/l`]);
  assert.equal(post.status, 200);
  assert.match((await s.https('/u')).headers['cache-status'], /fwd=uri-miss/, 'its own URL');
  assert.match((await s.https('/l')).headers['cache-status'], /fwd=uri-miss/, 'its same-origin Location');
  assert.match((await s.plain('/u')).headers['cache-status'], /; hit/, 'http://a.test/u is another origin');
  assert.match((await s.plain('/l')).headers['cache-status'], /; hit/);
  // and a POST over cleartext naming the https URL leaves the https entry
  await s.plain('/u', ['-X', 'POST', '--data', 'x', '-H', `X-Location: https://${HOST}/l`]);
  assert.match((await s.https('/l')).headers['cache-status'], /; hit/);
});

test('a background refresh of an https entry keeps its scheme: https key, proto=https, the http entry untouched', async (t) => {
  const s = await setup(t);
  const tag = '"w1"';
  s.origin.server.removeAllListeners('request');
  s.origin.server.on('request', (req, res) => {
    req.resume();
    req.on('end', () => {
      s.origin.seen.push({ method: req.method, url: req.url, headers: req.headers });
      if (req.headers['if-none-match'] === tag) {
        res.writeHead(304, { 'Cache-Control': 'max-age=60', ETag: tag });
        return res.end();
      }
      res.writeHead(200, { 'Cache-Control': 'max-age=0, stale-while-revalidate=60', ETag: tag });
      res.end(`page for ${req.headers['x-forwarded-proto']}`);
    });
  });
  await s.https('/w');
  const stale = await s.https('/w');
  assert.match(stale.headers['cache-status'], /detail=stale-while-revalidate/);
  let fresh;
  for (let i = 0; i < 100; i++) {
    fresh = await s.https('/w');
    if (/; hit; ttl=\d+$/.test(fresh.headers['cache-status'])) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(fresh.headers['cache-status'], /; hit; ttl=\d+$/, 'the refresh landed in the https entry');
  assert.equal(fresh.body, 'page for https');
  const refresh = s.origin.seen.find((x) => x.headers['if-none-match'] === tag);
  assert.equal(refresh.headers['x-forwarded-proto'], 'https');
  assert.match(refresh.headers.forwarded, /proto=https$/);
  const plain = await s.plain('/w');
  assert.match(plain.headers['cache-status'], /fwd=uri-miss/, 'nothing was stored under http://a.test/w');
  assert.equal(plain.body, 'page for http');
});
