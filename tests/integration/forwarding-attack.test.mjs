// Attacks on the forwarding fields and the peer signature (review of the
// TLS work, findings 2-5): each test fails against the binary as it was
// reviewed and passes once the finding is fixed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { certsForTests, startTlsProxy as startTls } from './tls-lib.mjs';
import { startProxy, startOrigin, freePort, tmpFile, rawExchange, parseResponses, get } from './lib.mjs';

const C = certsForTests('forwarding-attack');
const read = (f) => fs.readFileSync(f);
const startTlsProxy = (args, opts) => startTls(C, args, opts);

// Finding: only X-Forwarded-Proto is removed from a client's request, but
// origins read the scheme from its siblings too, before it: Rack (Rails,
// Sinatra) takes X-Forwarded-Ssl: on, then X-Forwarded-Scheme, then
// X-Forwarded-Proto; IIS/ARR Front-End-Https. A cleartext client sends
// `X-Forwarded-Ssl: on`, a Rack origin believes https and answers the page
// instead of its redirect to https, and that answer is stored under the
// http:// key and served to every cleartext client (the redirect, and
// what hangs on it such as Secure cookies and HSTS, gone for all).
test('cleartext: a client cannot claim https through X-Forwarded-Ssl / X-Forwarded-Scheme / Front-End-Https', async (t) => {
  // Rack::Request#scheme, in its order
  const rackScheme = (h) => {
    if (h['x-forwarded-ssl'] === 'on') return 'https';
    if (h['x-forwarded-scheme']) return h['x-forwarded-scheme'];
    if (h['front-end-https'] === 'on') return 'https';
    return h['x-forwarded-proto'] ?? 'http';
  };
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    if (rackScheme(req.headers) !== 'https') {
      res.statusCode = 301;
      res.setHeader('Location', `https://a${req.url}`);
      res.end();
      return;
    }
    res.end('account page');
  });
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await p.stop(); await origin.close(); });
  for (const [i, field] of ['X-Forwarded-Ssl: on', 'X-Forwarded-Scheme: https', 'Front-End-Https: on'].entries()) {
    const { data } = await rawExchange(p.port,
      `GET /account${i} HTTP/1.1\r\nHost: a\r\n${field}\r\nConnection: close\r\n\r\n`);
    assert.equal(parseResponses(data)[0].status, 301, `${field} from a cleartext client is not believed`);
    // and the next, honest, cleartext client gets the redirect, not the page
    const victim = parseResponses((await rawExchange(p.port,
      `GET /account${i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)).data)[0];
    assert.equal(victim.status, 301, `after ${field}: the cleartext entry is the redirect`);
  }
});
// RFC 7239 §4: Forwarded = 1#forwarded-element, pairs of token "=" (token /
// quoted-string) joined by ";". The elements of a value, or null when it
// does not parse (an unterminated quoted-string).
function forwardedElements(v) {
  const out = [];
  let cur = '';
  let i = 0;
  while (i < v.length) {
    const ch = v[i];
    if (ch === '"') {
      let j = i + 1;
      for (; j < v.length && v[j] !== '"'; j++) if (v[j] === '\\') j++;
      if (j >= v.length) return null;
      cur += v.slice(i, j + 1);
      i = j + 1;
    } else if (ch === ',') {
      out.push(cur.trim());
      cur = '';
      i++;
    } else {
      cur += ch;
      i++;
    }
  }
  out.push(cur.trim());
  return out;
}

// Finding: the client's Forwarded values are copied in front of ours
// unchecked, so a client that leaves a quoted-string open swallows our
// element: `Forwarded: for=6.6.6.6;proto=https;x="` reaches the origin as
// `for=6.6.6.6;proto=https;x=", for=127.0.0.1;proto=http`: our element is
// inside the client's quote, so the last element an origin trusts
// (proxy.c: "ours, the last, is the one an origin trusts") says
// for=6.6.6.6;proto=https to a lenient parser, and a strict one rejects
// the field. Same over the TLS listener's cleartext sibling. A malformed
// client Forwarded must be dropped (or ours kept parseable and last).
test('a client Forwarded with an open quoted-string cannot swallow our element', async (t) => {
  const origin = await startOrigin((req, res) => res.end('ok'));
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`,
    '--config', tmpFile('fw.yaml', 'proxy:\n  forwarded: true\n')]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const { data } = await rawExchange(p.port,
    'GET /a HTTP/1.1\r\nHost: a\r\nForwarded: for=6.6.6.6;proto=https;x="\r\nConnection: close\r\n\r\n');
  assert.equal(parseResponses(data)[0].status, 200);
  const v = origin.seen[0].headers.forwarded;
  const els = forwardedElements(v);
  assert.ok(els, `the Forwarded the origin got parses (RFC 7239): ${v}`);
  assert.equal(els[els.length - 1], 'for=127.0.0.1;proto=http', `our element is last: ${v}`);
});

// Finding: the peer signature covers method, target, ts, nonce and digest
// but not the peer's id, and nonces are remembered per id. Where two
// peers share a secret (nothing refuses it; one secret for a fleet of
// edges is the easy deployment), a captured signed request is accepted
// once more under each other id: `id=edge-1` -> 200, the same bytes with

test('a signed peer request replayed under another peer id (same secret) is refused', async (t) => {
  let posts = 0;
  const origin = await startOrigin((req, res) => {
    if (req.method === 'POST') posts++;
    res.setHeader('Cache-Control', 'no-store');
    res.end(`posts=${posts}`);
  });
  const secret = 'one-secret-shared-by-the-edge-fleet';
  const secretFile = tmpFile('fleet.secret', secret);
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config',
    tmpFile('peers.yaml', `peers:\n  - id: edge-1\n    secret_file: ${secretFile}\n  - id: edge-2\n    secret_file: ${secretFile}\n`)]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const ts = Math.floor(Date.now() / 1000);
  const nonce = crypto.randomBytes(16).toString('base64url');
  // signed by edge-1, as version 3 of the protocol says (the id signed first)
  const sig = crypto.createHmac('sha256', Buffer.from(secret)).update(`edge-1\nhttp\nPOST\n/order\n${ts}\n${nonce}\n`).digest('base64');
  const signed = (id) => `POST /order HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 0\r\nConnection: close\r\n` +
    `Idem-Peer: id=${id}, scheme=http, ts=${ts}, nonce=${nonce}, sig=${sig}\r\n\r\n`;
  const first = parseResponses((await rawExchange(p.port, signed('edge-1'))).data)[0];
  assert.equal(first.status, 200);
  assert.equal(posts, 1);
  // the same capture, replayed as the other peer
  const replay = parseResponses((await rawExchange(p.port, signed('edge-2'))).data)[0];
  assert.equal(replay.status, 401, 'the replay under another id is refused');
  assert.equal(posts, 1, 'the origin saw the POST once');
});

// Finding: only X-Forwarded-Proto is removed from a client's request, but
// origins read the scheme from its siblings too, before it: Rack (Rails,
// Sinatra) takes X-Forwarded-Ssl: on, then X-Forwarded-Scheme, then
// X-Forwarded-Proto; IIS/ARR Front-End-Https. A cleartext client sends
// `X-Forwarded-Ssl: on`, a Rack origin believes https and answers the page
// instead of its redirect to https, and that answer is stored under the
// http:// key and served to every cleartext client (the redirect, and

// Finding: in forward mode, a TLS listener makes the origin of an
// http:// URI be told proto=https (X-Forwarded-Proto and Forwarded), while
// the answer is stored under the http:// key (cache_request_scheme keys a
// forward proxy's absolute target by its scheme) and served from there to
// cleartext clients. proxy.c says "the proto we send is the scheme the
// request is keyed under"; here it is not: an origin that answers https
// clients differently (no redirect to https, Secure cookies, HSTS) has that
// answer cached for http://... and served over cleartext.
test('forward mode over a TLS listener: an http:// target is sent proto=http, the scheme it is keyed under', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(`xfp=${req.headers['x-forwarded-proto']}`);
  });
  const tlsPort = await freePort();
  const p = await startProxy(['--mode', 'forward', '--tls-listen', `127.0.0.1:${tlsPort}`,
    '--tls-cert', C.server.cert, '--tls-key', C.server.key,
    '--config', tmpFile('fwd.yaml', 'forward:\n  allow_private: true\nproxy:\n  forwarded: true\n')]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const req = `GET http://127.0.0.1:${origin.port}/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
  const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca: read(C.ca.cert) });
  let got = '';
  await new Promise((r) => s.on('secureConnect', r));
  s.write(req);
  s.on('data', (d) => { got += d; });
  await new Promise((r) => s.on('close', r));
  assert.match(got, /^HTTP\/1\.1 200/);
  assert.equal(origin.seen.length, 1);
  const h = origin.seen[0].headers;
  // the same entry answers cleartext clients: the origin must be told http
  assert.equal(h['x-forwarded-proto'], 'http', 'X-Forwarded-Proto matches the http:// key');
  assert.match(h.forwarded, /proto=http$/, 'Forwarded proto= matches the http:// key');
});

// Finding 2, through the peer link: the forward side's clients ask for
// http:// URIs only (https:// is 501), but once the link to the reverse
// side is TLS the reverse side keys them https:// and tells the origin
// proto=https, the link's transport standing for the client's scheme. The
// answer (made for https) is then stored under http://... on the forward
// side and served to its cleartext clients, and on the reverse side shares
// the https:// entry with its real https clients.
test('the peer link over TLS does not turn a forward client\'s http:// request into proto=https', async (t) => {
  const secret = tmpFile('peer.secret', 'a-long-shared-secret-for-the-tests\n');
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(`xfp=${req.headers['x-forwarded-proto']}`);
  });
  const reverse = await startTlsProxy(['--upstream', `http://127.0.0.1:${origin.port}`],
    { yaml: `peers:\n  - id: edge-1\n    secret_file: ${secret}\n` });
  const forward = await startProxy(['--mode', 'forward', '--peer', `https://127.0.0.1:${reverse.tlsPort}`,
    '--peer-id', 'edge-1', '--peer-secret', secret,
    '--config', tmpFile('fwd.yaml', `peer_tls:\n  ca: ${C.ca.cert}\n`)]);
  t.after(async () => { await forward.stop(); await reverse.stop(); await origin.close(); });
  const r = await get(forward.port, 'http://origin.test/doc');
  assert.equal(r.status, 200);
  assert.equal(origin.seen.length, 1);
  assert.equal(origin.seen[0].headers['x-forwarded-proto'], 'http', 'an http:// request is proto=http whatever the link');
});
