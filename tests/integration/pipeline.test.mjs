// What the server/ refactor (issue 14, design step 1) moves, pinned down
// before it moves: pipelining behind a hit and behind a parked request,
// 100-continue on a QUERY, coalesced streaming within one worker (framing as
// the waiters see it), the stale-while-revalidate refresh and its access log
// line, peer reference expansion with pipelined requests behind it, bytes
// that arrive with a tunnel's opening, and the drain. Cases already covered
// elsewhere are not repeated here (see the list in each section).
//
// Where a test must know that idemcache has read bytes (a request parked
// before its leader's fetch ends), it reads the socket queues from
// /proc/net/tcp: waiting for an event, never for a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { startProxy, startOrigin, startRawOrigin, rawExchange, parseResponses, get, tmpFile, sleep } from './lib.mjs';

// ---- helpers ----------------------------------------------------------------

// tx and rx queue of the loopback TCP socket local:port -> remote:port.
function tcpQueues(localPort, remotePort) {
  const hex = (p) => p.toString(16).toUpperCase().padStart(4, '0');
  const want = `0100007F:${hex(localPort)} 0100007F:${hex(remotePort)}`;
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 4 && `${f[1]} ${f[2]}` === want) {
      const [tx, rx] = f[4].split(':').map((x) => parseInt(x, 16));
      return { tx, rx };
    }
  }
  return null;
}

// Resolves once idemcache has read every byte `sock` wrote to it: nothing
// left in the client's send queue, nothing in idemcache's receive queue.
// idemcache handles a read in one loop turn, so what it read is parsed (and
// a request parked) before it looks at anything else, such as an origin's
// answer that arrives after this resolves.
async function readByProxy(proxyPort, sock) {
  for (let i = 0; i < 1000; i++) {
    const c = tcpQueues(sock.localPort, proxyPort);
    const s = tcpQueues(proxyPort, sock.localPort);
    if (sock.writableLength === 0 && c && s && c.tx === 0 && s.rx === 0) return;
    await sleep(10);
  }
  throw new Error('idemcache never read what the client sent');
}

// A raw client connection that collects what comes back.
function rawClient(port) {
  const s = net.connect(port, '127.0.0.1');
  const c = { sock: s, data: Buffer.alloc(0), closed: false };
  s.on('data', (d) => { c.data = Buffer.concat([c.data, d]); });
  s.on('close', () => { c.closed = true; });
  s.on('error', () => {});
  c.connected = new Promise((r) => s.on('connect', r));
  c.until = async (pred, what) => {
    for (let i = 0; i < 1000 && !pred(c); i++) await sleep(10);
    assert.ok(pred(c), `waited for ${what}; got ${JSON.stringify(c.data.toString('latin1').slice(0, 400))}`);
  };
  return c;
}

// How many whole responses a byte stream holds so far (parseResponses
// expects whole messages: a chunked body cut short would loop it).
function completeCount(buf) {
  let pos = 0;
  let n = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', pos);
    if (end < 0) return n;
    const head = buf.subarray(pos, end).toString('latin1');
    const status = Number(head.slice(9, 12));
    pos = end + 4;
    const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (status >= 200 && status !== 204 && status !== 304 && /\r\ntransfer-encoding: *chunked/i.test(head)) {
      for (;;) {
        const le = buf.indexOf('\r\n', pos);
        if (le < 0) return n;
        const size = parseInt(buf.subarray(pos, le).toString(), 16);
        if (size === 0) {
          const t = buf.indexOf('\r\n', le + 2);
          if (t < 0) return n;
          pos = t + 2;
          break;
        }
        if (buf.length < le + 2 + size + 2) return n;
        pos = le + 2 + size + 2;
      }
    } else if (cl && status >= 200) {
      if (buf.length < pos + Number(cl[1])) return n;
      pos += Number(cl[1]);
    }
    n++;
  }
}

// One origin for the cache tests: routes path -> async (req, n, res) returning
// { status, headers, body }, or handling `res` itself (returning null).
async function cacheSetup(t, routes, { args = [], workers = 1, yaml = '' } = {}) {
  const counts = {};
  const origin = await startOrigin(async (req, res, body) => {
    const p = new URL(req.url, 'http://x').pathname;
    counts[p] = (counts[p] || 0) + 1;
    const route = routes[p] || (() => ({ status: 404, body: 'nope' }));
    const r = await route(req, counts[p], res, body);
    if (!r) return;
    res.statusCode = r.status || 200;
    for (const [k, v] of Object.entries(r.headers || {})) res.setHeader(k, v);
    res.end(r.body ?? '');
  });
  t.after(() => origin.close());
  const extra = yaml ? ['--config', tmpFile('c.yaml', yaml)] : [];
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, ...extra, ...args], { workers });
  t.after(async () => { await proxy.stop(); });
  return { origin, proxy, counts, get: (path, opts) => get(proxy.port, path, opts) };
}

const fresh = (body, extra = {}) => ({ headers: { 'Cache-Control': 'max-age=60', ...extra }, body });
const gate = () => { let open; const p = new Promise((r) => (open = r)); p.open = open; return p; };
const reqLine = (path, port, extra = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}\r\n`;

// Wait for the access log to hold `n` lines (it is written as each response ends).
async function accessLines(proxy, n) {
  let log = proxy.access();
  for (let i = 0; i < 500 && log.length < n; i++) { await sleep(10); log = proxy.access(); }
  return log;
}

// ---- pipelining -------------------------------------------------------------
// Already covered: cache.test.mjs 'pipelined hits are answered in order'
// (small hits and a miss), proxy.test.mjs 'pipelined requests are answered in
// order' (misses, the first slowest), body.test.mjs (a body-keyed hit then a
// miss), connect.test.mjs (Connect POSTs).

test('pipelining behind a hit too large for one write: the next answers wait for it, in order', async (t) => {
  const big = crypto.randomBytes(3 << 20);
  const s = await cacheSetup(t, {
    '/big': () => fresh(big),
    '/small': () => fresh('small'),
    '/miss': (req, n) => ({ body: `miss-${n}` }),
  });
  assert.ok((await s.get('/big')).body.equals(big));
  await s.get('/small');
  const reqs = ['/big', '/small', '/miss', '/big'].map((p) => reqLine(p, s.proxy.port)).join('');
  const c = rawClient(s.proxy.port);
  t.after(() => c.sock.destroy());
  await c.connected;
  c.sock.write(reqs);
  await c.until((x) => completeCount(x.data) === 4, 'four whole answers');
  const rs = parseResponses(c.data);
  assert.ok(rs[0].body.equals(big), 'the first hit whole');
  assert.equal(rs[1].body.toString(), 'small');
  assert.equal(rs[2].body.toString(), 'miss-1');
  assert.ok(rs[3].body.equals(big), 'the second hit whole');
  for (const i of [0, 1, 3]) assert.match(rs[i].headers['cache-status'], /^idemcache; hit/);
  assert.equal(s.counts['/big'], 1);
});

// A request for a key whose fetch is in flight parks; what the client
// pipelined behind it waits for it, whether it is answered by streaming the
// leader's fetch, or replayed once that ends.
for (const kind of ['held', 'streamed', 'unstorable']) {
  test(`pipelining behind a parked request (${kind} leader response): answers in order`, async (t) => {
    const arrived = gate();
    const release = gate();
    const first = 'first-part.'.repeat(3000);
    const rest = 'and-the-rest.'.repeat(3000);
    const s = await cacheSetup(t, {
      '/slow': async (req, n, res) => {
        if (n === 1) arrived.open();
        if (kind === 'streamed') {
          // chunked, streamed to waiters as it arrives
          res.writeHead(200, { 'Cache-Control': 'max-age=60' });
          res.write(first);
          if (n === 1) await release;
          res.end(rest);
          return null;
        }
        if (n === 1) await release;
        // 'held': small, held for its generated ETag then stored;
        // 'unstorable': private, so each waiter goes upstream itself
        return kind === 'held' ? fresh(`slow-${n}`) : { headers: { 'Cache-Control': 'private' }, body: `slow-${n}` };
      },
      '/hit': () => fresh('hit'),
      '/other': (req, n) => ({ body: `other-${n}` }),
    });
    await s.get('/hit');
    const leader = s.get('/slow');
    await arrived; // the leader's fetch is in flight
    const c = rawClient(s.proxy.port);
    t.after(() => c.sock.destroy());
    await c.connected;
    c.sock.write(['/slow', '/other', '/hit'].map((p) => reqLine(p, s.proxy.port)).join(''));
    await readByProxy(s.proxy.port, c.sock); // parked, the rest read behind it
    if (kind === 'streamed') {
      // a waiter streams the leader's fetch: the first part reaches it now
      await c.until((x) => x.data.includes(Buffer.from(first.slice(0, 100))), 'the streamed first part');
    }
    assert.equal(s.counts['/other'], undefined, 'nothing behind the parked request was forwarded');
    release.open();
    const l = await leader;
    assert.equal(l.status, 200);
    await c.until((x) => completeCount(x.data) === 3, 'three answers');
    const rs = parseResponses(c.data);
    const want = { held: 'slow-1', streamed: first + rest, unstorable: 'slow-2' }[kind];
    assert.deepEqual(rs.map((r) => r.body.toString()), [want, 'other-1', 'hit']);
    assert.equal(s.counts['/slow'], kind === 'unstorable' ? 2 : 1);
    if (kind === 'streamed') {
      assert.match(rs[0].headers['cache-status'], /; collapsed$/);
      assert.equal(rs[0].headers['transfer-encoding'], 'chunked');
    }
    assert.match(rs[2].headers['cache-status'], /^idemcache; hit/);
    assert.ok(!c.closed, 'the connection stays open');
  });
}

// ---- Expect: 100-continue ---------------------------------------------------
// Already covered: proxy.test.mjs (a forwarded POST gets 100 before its body),
// body.test.mjs 'Expect: 100-continue while the body is read for the key' (a
// POST keyed by a rule: one 100, a miss then a hit).

test('Expect: 100-continue on a QUERY: the 100 comes before the body is sent; one 100; then a hit, and a pipelined request', async (t) => {
  const s = await cacheSetup(t, {
    '/q': (req, n, res, body) => fresh(`q-${n}:${body}`),
    '/after': (req, n) => ({ body: `after-${n}` }),
  });
  const body = '{"query":"x"}';
  const head = `QUERY /q HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`;
  for (const round of [1, 2]) {
    const c = rawClient(s.proxy.port);
    t.after(() => c.sock.destroy());
    await c.connected;
    c.sock.write(head);
    // a client that waits for the 100 (as curl does) sends nothing before it
    await c.until((x) => x.data.includes('\r\n\r\n'), 'HTTP/1.1 100 Continue');
    assert.match(c.data.toString(), /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
    c.sock.write(body + reqLine('/after', s.proxy.port));
    await c.until((x) => completeCount(x.data) === 3, 'the 100 and two answers');
    const rs = parseResponses(c.data);
    assert.deepEqual(rs.map((r) => r.status), [100, 200, 200], 'one 100, not two');
    assert.equal(rs[1].body.toString(), `q-1:${body}`);
    assert.match(rs[1].headers['cache-status'], round === 1 ? /fwd=uri-miss/ : /^idemcache; hit/);
    assert.equal(rs[2].body.toString(), `after-${round}`);
  }
  assert.equal(s.counts['/q'], 1);
});

// ---- coalesced streaming ----------------------------------------------------
// Already covered: cache.test.mjs 'coalescing streams to waiters as the
// response arrives (chunked|content-length, two workers)' and the broken-off
// stream. Here: one worker (every waiter on the leader's loop), and the
// framing each waiter gets.

for (const framing of ['content-length', 'chunked']) {
  test(`coalesced streaming within one worker (${framing}): one fetch, each waiter framed like the origin`, async (t) => {
    const N = 5;
    const first = 'first-part.'.repeat(3000);
    const rest = 'and-the-rest.'.repeat(5000);
    const everyone = gate();
    const s = await cacheSetup(t, {
      '/stream': async (req, n, res) => {
        // a Surrogate-Key between two fields: waiters get neither it nor a
        // changed order, and the origin's reason phrase (stream_start)
        const h = { 'Cache-Control': 'max-age=60', 'Surrogate-Key': 'k1', 'X-After': 'a' };
        if (framing === 'content-length') h['Content-Length'] = first.length + rest.length;
        res.writeHead(200, 'Streamed Fine', h);
        res.write(first);
        await everyone; // the rest only once every client has the first part
        res.end(rest);
        return null;
      },
    }, { yaml: 'cache:\n  etag_hold_max: 1000\n' }); // larger than the hold: streamed
    const agent = new http.Agent({ keepAlive: true, maxSockets: N });
    t.after(() => agent.destroy());
    let started = 0;
    const one = () => new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: s.proxy.port, path: '/stream', agent }, (res) => {
        let n = 0;
        const chunks = [];
        res.on('data', (d) => {
          chunks.push(d);
          if (n < first.length && (n += d.length) >= first.length && ++started === N) everyone.open();
        });
        res.on('end', () => resolve({ headers: res.headers, rawHeaders: res.rawHeaders, reason: res.statusMessage, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      }).on('error', reject);
    });
    const rs = await Promise.all(Array.from({ length: N }, one));
    for (const r of rs) {
      assert.equal(r.reason, 'Streamed Fine');
      assert.equal(r.headers['surrogate-key'], undefined);
      const names = r.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      assert.ok(names.indexOf('cache-control') < names.indexOf('x-after'), 'the stored order');
    }
    assert.equal(s.counts['/stream'], 1, 'one origin request');
    const collapsed = rs.filter((r) => /; collapsed$/.test(r.headers['cache-status']));
    assert.equal(collapsed.length, N - 1, 'every waiter streamed the leader\'s fetch');
    for (const r of rs) {
      assert.equal(r.body, first + rest);
      if (framing === 'content-length') {
        assert.equal(r.headers['content-length'], String(first.length + rest.length));
        assert.equal(r.headers['transfer-encoding'], undefined);
      } else {
        assert.equal(r.headers['transfer-encoding'], 'chunked');
        assert.equal(r.headers['content-length'], undefined);
      }
    }
  });
}

// ---- stale-while-revalidate -------------------------------------------------
// Already covered: cache.test.mjs (one refresh per key, the 304 refresh,
// background_fetches 0), cache-security.test.mjs (a refresh's Set-Cookie).
// Here: the refresh's own access log line, for a GET and for a HEAD.

test('a stale-while-revalidate refresh runs in the background and has its own access log line (a GET, for a HEAD too)', async (t) => {
  const swr = { 'Cache-Control': 'max-age=0, stale-while-revalidate=60' };
  const s = await cacheSetup(t, {
    '/swr': (req, n) => ({ headers: n === 1 ? swr : { 'Cache-Control': 'max-age=60' }, body: `v${n}` }),
    '/head': (req, n) => ({ headers: n === 1 ? swr : { 'Cache-Control': 'max-age=60' }, body: `h${n}` }),
  });
  await s.get('/swr');
  const stale = await s.get('/swr');
  assert.equal(stale.body.toString(), 'v1');
  assert.match(stale.headers['cache-status'], /detail=stale-while-revalidate/);
  let log = await accessLines(s.proxy, 3);
  assert.equal(log.length, 3, 'the first fetch, the stale answer and the refresh');
  const [miss, served, refresh] = [log[0], log.find((l, i) => i > 0 && l.upstream_ms === -1), log.find((l, i) => i > 0 && l.upstream_ms >= 0)];
  assert.ok(served && refresh, JSON.stringify(log));
  assert.equal(miss.target, '/swr');
  assert.deepEqual([served.method, served.target, served.status], ['GET', '/swr', 200]);
  assert.deepEqual([refresh.method, refresh.target, refresh.status, refresh.client], ['GET', '/swr', 200, '127.0.0.1']);
  assert.equal(s.counts['/swr'], 2, 'the refresh reached the origin');
  // the refreshed copy is fresh
  const after = await s.get('/swr');
  assert.equal(after.body.toString(), 'v2');
  assert.match(after.headers['cache-status'], /^idemcache; hit; ttl=\d+$/);
  // a stale HEAD is answered at once; its refresh fetches with a GET
  await s.get('/head');
  const h = await s.get('/head', { method: 'HEAD' });
  assert.match(h.headers['cache-status'], /detail=stale-while-revalidate/);
  log = await accessLines(s.proxy, 7);
  const heads = log.filter((l) => l.target === '/head');
  assert.equal(heads.length, 3, JSON.stringify(heads));
  assert.ok(heads.some((l) => l.method === 'HEAD' && l.upstream_ms === -1), 'the HEAD answered from the store');
  assert.ok(heads.some((l) => l.method === 'GET' && l.upstream_ms >= 0 && l.status === 200), 'its refresh, a GET');
  assert.equal(s.origin.seen.filter((x) => x.url === '/head').map((x) => x.method).join(), 'GET,GET');
  assert.equal((await s.get('/head')).body.toString(), 'h2');
});

// ---- peer references --------------------------------------------------------
// Already covered: peer.test.mjs (references both ways through a relay, the
// 415 fallback after a restart, 415 then a pipelined GET on the reverse
// side, a reference expanded once, malformed codings). Here: the expanded
// request with requests pipelined behind it, in one write.

const SECRET_BYTES = Buffer.from('a-long-shared-secret-for-the-pipeline-tests');
const SECRET = tmpFile('peer.secret', `${SECRET_BYTES}\n`);
function peerFields(method, target, digest) {
  // signed as docs/peer-protocol.md says: ts, a fresh nonce, the digest
  const ts = Math.floor(Date.now() / 1000);
  const nonce = crypto.randomBytes(16).toString('base64url');
  const sig = crypto.createHmac('sha256', SECRET_BYTES).update(`edge-1\nhttp\n${method}\n${target}\n${ts}\n${nonce}\n${digest}`).digest('base64');
  return `Idem-Peer: id=edge-1, scheme=http, ts=${ts}, nonce=${nonce}, sig=${sig}\r\nIdem-Digest: ${digest}\r\n`;
}
const digestOf = (body) => `sha-256=:${crypto.createHash('sha256').update(body).digest('base64')}:`;

test('reverse side: a signed request parked behind another\'s fetch and woken goes upstream once, its nonce not taken for a replay', async (t) => {
  const arrived = gate();
  const release = gate();
  const s = await cacheSetup(t, {
    '/slow': async (req, n) => {
      if (n === 1) {
        arrived.open();
        await release;
      }
      // private: the waiter is not answered from the store, it goes upstream itself
      return { headers: { 'Cache-Control': 'private' }, body: `slow-${n}` };
    },
  }, { yaml: `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n` });
  const leader = s.get('/slow');
  await arrived; // the leader's fetch is in flight
  const c = rawClient(s.proxy.port);
  t.after(() => c.sock.destroy());
  await c.connected;
  const ts = Math.floor(Date.now() / 1000);
  const nonce = crypto.randomBytes(16).toString('base64url');
  const sig = crypto.createHmac('sha256', SECRET_BYTES).update(`edge-1\nhttp\nGET\n/slow\n${ts}\n${nonce}\n`).digest('base64');
  c.sock.write(`GET /slow HTTP/1.1\r\nHost: 127.0.0.1:${s.proxy.port}\r\nIdem-Peer: id=edge-1, scheme=http, ts=${ts}, nonce=${nonce}, sig=${sig}\r\n\r\n`
    + reqLine('/after', s.proxy.port));
  await readByProxy(s.proxy.port, c.sock); // parked, the GET behind it read too
  release.open();
  assert.equal((await leader).status, 200);
  await c.until((x) => completeCount(x.data) === 2, 'two answers');
  const rs = parseResponses(c.data);
  assert.deepEqual(rs.map((r) => r.status), [200, 404]);
  assert.equal(rs[0].body.toString(), 'slow-2', 'woken, it went upstream itself');
  assert.equal(s.counts['/slow'], 2);
  assert.doesNotMatch(s.proxy.errors(), /replayed/, 'no replay logged');
});

test('reverse side: an expanded reference and an unknown one (415), with requests pipelined behind each, in order', async (t) => {
  const seen = [];
  const origin = await startOrigin((req, res, body) => {
    seen.push({ method: req.method, url: req.url, body: body.toString() });
    res.setHeader('Cache-Control', 'no-store');
    res.end(`${req.method} ${req.url} ${crypto.createHash('sha256').update(body).digest('hex')}`);
  });
  t.after(() => origin.close());
  const cfg = tmpFile('reverse.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`);
  const reverse = await startProxy(['--config', cfg, '--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await reverse.stop(); });
  const stored = JSON.stringify({ q: 'z'.repeat(5000) });
  const sha = crypto.createHash('sha256').update(stored).digest('hex');
  const dg = digestOf(stored);
  const full = `POST /api/a HTTP/1.1\r\nHost: origin.test\r\n${peerFields('POST', '/api/a', dg)}Content-Type: application/json\r\nContent-Length: ${stored.length}\r\n\r\n${stored}`;
  const ref = (target, digest) => `POST ${target} HTTP/1.1\r\nHost: origin.test\r\n${peerFields('POST', target, digest)}Content-Type: application/json\r\nContent-Encoding: idem-ref\r\nContent-Length: 0\r\n\r\n`;
  const plain = (p) => `GET ${p} HTTP/1.1\r\nHost: origin.test\r\n\r\n`;
  // the body whole, then a reference to it, a GET, an unknown reference, a GET: one write
  const unknown = digestOf('never sent');
  const { data, closed } = await rawExchange(reverse.port,
    full + ref('/api/b', dg) + plain('/after-ref') + ref('/api/c', unknown) + plain('/after-415'), { idleMs: 800 });
  const rs = parseResponses(data);
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 415, 200]);
  assert.equal(rs[1].body.toString(), `POST /api/b ${sha}`, 'the reference expanded to the stored body');
  assert.match(rs[2].body.toString(), /^GET \/after-ref /);
  assert.match(rs[4].body.toString(), /^GET \/after-415 /);
  assert.deepEqual(seen.map((x) => `${x.method} ${x.url}`), ['POST /api/a', 'POST /api/b', 'GET /after-ref', 'GET /after-415']);
  assert.equal(seen[1].body, stored, 'the origin got the body whole');
  assert.ok(!closed, 'the connection stays open');
});

test('reverse side: a reference that would open a tunnel (Upgrade) is refused, 400, and nothing behind it is taken for its body', async (t) => {
  const seen = [];
  const origin = await startOrigin((req, res, body) => {
    seen.push(`${req.method} ${req.url} ${body.length}`);
    res.setHeader('Cache-Control', 'no-store');
    res.end('ok');
  });
  t.after(() => origin.close());
  const cfg = tmpFile('reverse-up.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`);
  const reverse = await startProxy(['--config', cfg, '--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await reverse.stop(); });
  const stored = JSON.stringify({ q: 'u'.repeat(300) });
  const dg = digestOf(stored);
  const full = `POST /api/a HTTP/1.1\r\nHost: origin.test\r\n${peerFields('POST', '/api/a', dg)}Content-Type: application/json\r\nContent-Length: ${stored.length}\r\n\r\n${stored}`;
  const ref = `POST /api/b HTTP/1.1\r\nHost: origin.test\r\n${peerFields('POST', '/api/b', dg)}Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Encoding: idem-ref\r\nContent-Length: 0\r\n\r\n`;
  const { data } = await rawExchange(reverse.port, full + ref + 'GET /behind HTTP/1.1\r\nHost: origin.test\r\n\r\n', { idleMs: 800 });
  const rs = parseResponses(data);
  assert.deepEqual(rs.map((r) => r.status), [200, 400]);
  assert.match(rs[1].body.toString(), /reference must carry no body, nor open a tunnel/);
  assert.deepEqual(seen, [`POST /api/a ${stored.length}`], 'the reference never reached the origin');
});

// ---- tunnels ----------------------------------------------------------------
// Already covered: forward.test.mjs 'CONNECT opens a tunnel both ways, with
// half-close passed on', proxy.test.mjs 'WebSocket upgrade is tunnelled after
// 101'. Here: bytes that arrive with the opening, on both sides (a client
// that sends right behind its head, a server that speaks first).

test('CONNECT: bytes sent right behind the head, and a server that speaks first, both cross the tunnel', async (t) => {
  const got = [];
  const o = await startRawOrigin((s) => {
    s.write('banner\n');
    s.on('data', (d) => { got.push(d); s.write(`echo:${d}`); });
  });
  t.after(() => o.close());
  const p = await startProxy(['--mode', 'forward', '--config',
    tmpFile('fwd.yaml', `forward:\n  allow_private: true\n  connect_ports: [${o.port}]\n`)]);
  t.after(async () => { await p.stop(); });
  const c = rawClient(p.port);
  t.after(() => c.sock.destroy());
  await c.connected;
  c.sock.write(`CONNECT 127.0.0.1:${o.port} HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\n\r\nearly-bytes`);
  await c.until((x) => x.data.includes('echo:early-bytes'), 'the early bytes echoed');
  assert.match(c.data.toString(), /^HTTP\/1\.1 200 Connection Established\r\n\r\nbanner\necho:early-bytes$/);
  assert.equal(Buffer.concat(got).toString(), 'early-bytes');
});

test('Upgrade: bytes sent right behind the request head, and the server\'s bytes in the 101\'s segment, both cross', async (t) => {
  const got = [];
  const o = await startRawOrigin((s) => {
    let buf = Buffer.alloc(0);
    let upgraded = false;
    s.on('data', (d) => {
      if (upgraded) { got.push(d); s.write(`echo:${d}`); return; }
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      upgraded = true;
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nserver-hello;');
      const after = buf.subarray(end + 4);
      if (after.length) { got.push(after); s.write(`echo:${after}`); }
    });
  });
  t.after(() => o.close());
  const p = await startProxy(['--upstream', `http://127.0.0.1:${o.port}`]);
  t.after(async () => { await p.stop(); });
  const c = rawClient(p.port);
  t.after(() => c.sock.destroy());
  await c.connected;
  c.sock.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\nclient-early');
  await c.until((x) => x.data.includes('echo:client-early'), 'the early bytes echoed');
  const text = c.data.toString();
  assert.match(text, /^HTTP\/1\.1 101 /);
  assert.ok(text.endsWith('\r\n\r\nserver-hello;echo:client-early'), text);
  assert.equal(Buffer.concat(got).toString(), 'client-early');
  c.sock.write('later');
  await c.until((x) => x.data.includes('echo:later'), 'a later frame echoed');
});

// ---- drain ------------------------------------------------------------------
// Already covered: proxy.test.mjs 'SIGTERM drains: an in-flight request
// finishes, then exit 0'. Here: during the drain, new connections are
// refused and an idle keep-alive connection is closed, while the request in
// flight still completes.

test('drain: while a request is in flight, new connections are refused and idle ones closed; it completes; exit 0', async (t) => {
  const arrived = gate();
  const release = gate();
  const origin = await startOrigin(async (req, res) => {
    if (req.url === '/slow') { arrived.open(); await release; }
    res.end(`done ${req.url}`);
  });
  t.after(() => { release.open(); return origin.close(); });
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await p.stop(); });
  // an idle keep-alive connection, one request done on it
  const idle = rawClient(p.port);
  t.after(() => idle.sock.destroy());
  await idle.connected;
  idle.sock.write(reqLine('/quick', p.port));
  await idle.until((x) => completeCount(x.data) === 1, 'the idle connection\'s answer');
  const pending = get(p.port, '/slow');
  await arrived;
  p.proc.kill('SIGTERM');
  // the listener goes: a new connection is refused (wait for it, not a time)
  let refused = false;
  for (let i = 0; i < 500 && !refused; i++) {
    refused = await new Promise((resolve) => {
      const s = net.connect(p.port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(false); });
      s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
    });
    if (!refused) await sleep(10);
  }
  assert.ok(refused, 'new connections are refused while draining');
  await idle.until((x) => x.closed, 'the idle connection closed');
  assert.equal(p.proc.exitCode, null, 'still running: a request is in flight');
  release.open();
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'done /slow');
  assert.equal(r.headers.connection, 'close');
  const { code } = await p.exited;
  assert.equal(code, 0);
});
