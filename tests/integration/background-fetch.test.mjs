// A coalescing leader that leaves does not cut off its followers (issue 15):
// when the client whose request fetches a storable response goes away
// mid-body, the fetch goes on into the cache without it (a background
// fetch, proxy.c go_on_without_client, internal.c internal_adopt). Each
// test here: a real origin that sends a large cacheable body in pieces,
// holding the rest until the test lets it go, and a leader that reads
// 10 KB and leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import http2 from 'node:http2';
import { startProxy, startOrigin, get, tmpFile, sleep } from './lib.mjs';

const SIZE = 1536 * 1024; // over cache.etag_hold_max: streamed, not held
const FIRST = 256 * 1024; // sent at once; the rest once released
const PIECE = 64 * 1024;

function bodyOf(seed, n = SIZE) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed + (i >> 9)) & 0xff;
  return b;
}

// An origin whose paths (path -> { body, headers, first }) send `first`
// (FIRST) bytes, then
// wait for release(path), then the rest in pieces. closedEarly(path): the
// origin saw its connection close before the body was all written.
async function slowOrigin(paths) {
  const waits = new Map();
  const state = new Map();
  for (const p of Object.keys(paths)) {
    let release;
    const gate = new Promise((r) => { release = r; });
    waits.set(p, { gate, release });
    state.set(p, { requests: 0, closedEarly: false, finished: false });
  }
  const origin = await startOrigin(async (req, res) => {
    const spec = paths[req.url];
    if (!spec) { res.statusCode = 404; res.end(); return; }
    const st = state.get(req.url);
    st.requests++;
    res.on('close', () => { if (!res.writableFinished) st.closedEarly = true; });
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', ...spec.headers });
    const send = async (chunk) => {
      if (res.destroyed) return;
      if (res.write(chunk)) return;
      await new Promise((r) => {
        const go = () => { res.off('drain', go); res.off('close', go); r(); };
        res.on('drain', go);
        res.on('close', go);
      });
    };
    const first = spec.first || FIRST;
    await send(spec.body.subarray(0, first));
    await waits.get(req.url).gate;
    for (let at = first; at < spec.body.length && !res.destroyed; at += PIECE) {
      await send(spec.body.subarray(at, Math.min(at + PIECE, spec.body.length)));
      await sleep(2);
    }
    if (!res.destroyed) res.end(() => { st.finished = true; });
  });
  return {
    origin,
    state: (p) => state.get(p),
    release: (p) => waits.get(p).release(),
    releaseAll: () => { for (const w of waits.values()) w.release(); },
  };
}

// An HTTP/1.1 leader: reads 10 KB of the response and stops reading;
// resolves with leave(), which closes its socket.
function h1Leader(port, path) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = 0;
    s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
    s.on('data', (d) => {
      got += d.length;
      if (got >= 10 * 1024 && !s.isPaused()) { s.pause(); resolve({ leave: () => s.destroy() }); }
    });
    s.on('error', reject);
  });
}

// An h2 leader: reads 10 KB and stops reading; leave() resets its stream
// (RST_STREAM CANCEL).
function h2Leader(port, path) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const req = session.request({ ':path': path });
    let got = 0;
    req.on('data', (d) => {
      got += d.length;
      if (got >= 10 * 1024 && !req.isPaused()) {
        req.pause();
        resolve({ leave: () => req.close(http2.constants.NGHTTP2_CANCEL), session });
      }
    });
    req.on('error', () => {});
    req.on('close', () => { if (got < 10 * 1024) reject(new Error('h2 leader closed early')); });
  });
}

// A leader that reads 10 KB and leaves at once.
const leaveAfter10k = async (leader) => (await leader).leave();

// A follower on HTTP/1.1: resolves once its head came, with `done`, the
// whole outcome ({ status, headers, body, complete }).
function h1Follower(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks = [];
      const done = new Promise((fin) => {
        let settled = false;
        const end = (complete) => { if (!settled) { settled = true; fin({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), complete }); } };
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => end(res.complete));
        res.on('error', () => end(false));
        res.on('aborted', () => end(false));
        res.on('close', () => end(res.complete));
      });
      resolve({ headers: res.headers, done });
    });
    req.on('error', reject);
    req.end();
  });
}

// A follower on h2: resolves once its head came, as h1Follower.
function h2Follower(port, path) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const req = session.request({ ':path': path });
    req.on('response', (headers) => {
      const chunks = [];
      const done = new Promise((fin) => {
        let settled = false;
        const end = (complete) => { if (!settled) { settled = true; session.close(); fin({ status: headers[':status'], headers, body: Buffer.concat(chunks), complete }); } };
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => end(req.rstCode === undefined || req.rstCode === 0));
        req.on('error', () => end(false));
        req.on('close', () => end(req.rstCode === http2.constants.NGHTTP2_NO_ERROR && req.readableEnded));
      });
      resolve({ headers, done });
    });
    req.on('error', reject);
  });
}

// Until cond() holds or ~5 s pass (a sync point, not a timing assertion).
async function until(cond) {
  for (let i = 0; i < 500 && !cond(); i++) await sleep(10);
}

// The proxy took note that the leader left: the background fetch's log
// line (this code), or the origin saw its connection close (the old).
const leaderGone = (proxy, o, path) => until(() => /goes on into the cache/.test(proxy.errors()) || o.state(path).closedEarly);

async function setup(t, paths, config = '') {
  const o = await slowOrigin(paths);
  t.after(async () => { o.releaseAll(); await o.origin.close(); });
  const args = ['--upstream', `http://127.0.0.1:${o.origin.port}`];
  if (config) args.push('--config', tmpFile('c.yaml', config));
  const proxy = await startProxy(args);
  t.after(() => proxy.stop());
  return { o, proxy };
}

test('h1: a coalescing leader that leaves mid-body does not cut off its follower; the object is stored whole', async (t) => {
  const body = bodyOf(1);
  const { o, proxy } = await setup(t, { '/big': { body, headers: { 'Cache-Control': 'max-age=300', ETag: '"v1"', 'Content-Length': String(SIZE) } } });
  const leader = await h1Leader(proxy.port, '/big');
  const follower = await h1Follower(proxy.port, '/big');
  assert.match(follower.headers['cache-status'], /; collapsed/, 'the follower streams the leader\'s fetch');
  leader.leave();
  await leaderGone(proxy, o, '/big');
  o.release('/big');
  const f = await follower.done;
  assert.equal(f.complete, true, 'the follower got a whole response');
  assert.equal(f.body.length, SIZE);
  assert.ok(f.body.equals(body), 'byte-exact');
  assert.equal(o.state('/big').closedEarly, false, 'the origin\'s work was not thrown away');
  const hit = await get(proxy.port, '/big');
  assert.match(hit.headers['cache-status'], /hit/);
  assert.ok(hit.body.equals(body), 'the stored object is whole');
  assert.equal(o.state('/big').requests, 1, 'the origin was asked once');
  assert.match(proxy.errors(), /client 127\.0\.0\.1 gone: GET \/big goes on into the cache \(background fetch\)/);
});

// The leader's stream window (64 KiB) stays shut once it stops reading:
// more than WRITE_HIGH_WATER waits for it, and the origin's side is paused
// when it leaves; the fetch must read on from there.
test('h2: a leader that resets its stream mid-body does not cut off its followers (h2 and h1); the object is stored whole', { timeout: 30000 }, async (t) => {
  const body = bodyOf(2);
  // chunked (no Content-Length): streamed with its end unknown
  const { o, proxy } = await setup(t, { '/big2': { body, first: 768 * 1024, headers: { 'Cache-Control': 'max-age=300' } } });
  const leader = await h2Leader(proxy.port, '/big2');
  t.after(() => leader.session.destroy());
  const f2 = await h2Follower(proxy.port, '/big2');
  const f1 = await h1Follower(proxy.port, '/big2');
  assert.match(f2.headers['cache-status'], /; collapsed/);
  assert.match(f1.headers['cache-status'], /; collapsed/);
  leader.leave();
  await leaderGone(proxy, o, '/big2');
  o.release('/big2');
  for (const f of [await f2.done, await f1.done]) {
    assert.equal(f.complete, true, 'a whole response');
    assert.equal(f.body.length, SIZE);
    assert.ok(f.body.equals(body), 'byte-exact');
  }
  const hit = await get(proxy.port, '/big2');
  assert.match(hit.headers['cache-status'], /hit/);
  assert.ok(hit.body.equals(body));
  assert.equal(o.state('/big2').requests, 1, 'the origin was asked once');
});

test('h2: a leader whose whole connection closes mid-body does not cut off its follower', async (t) => {
  const body = bodyOf(10);
  const { o, proxy } = await setup(t, { '/conn': { body, headers: { 'Cache-Control': 'max-age=300', ETag: '"c"', 'Content-Length': String(SIZE) } } });
  const leader = await h2Leader(proxy.port, '/conn');
  const follower = await h1Follower(proxy.port, '/conn');
  leader.session.destroy(); // the TCP connection, every stream on it
  await leaderGone(proxy, o, '/conn');
  o.release('/conn');
  const f = await follower.done;
  assert.equal(f.complete, true);
  assert.ok(f.body.equals(body), 'byte-exact');
  const hit = await get(proxy.port, '/conn');
  assert.match(hit.headers['cache-status'], /hit/);
  assert.equal(o.state('/conn').requests, 1);
});

// Held until complete for the ETag it will get (cache.etag_hold_max): the
// client has had nothing yet when it resets its connection.
test('a response held for its generated ETag: a client that resets goes on into the cache, and the request parked behind it is answered from it', async (t) => {
  const size = 768 * 1024;
  const body = bodyOf(11, size);
  const { o, proxy } = await setup(t, { '/held-tag': { body, first: 300 * 1024, headers: { 'Cache-Control': 'max-age=300', 'Content-Length': String(size) } } });
  const s = net.connect(proxy.port, '127.0.0.1');
  s.on('error', () => {});
  s.write(`GET /held-tag HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n\r\n`);
  await until(() => o.state('/held-tag').requests === 1);
  const waiter = get(proxy.port, '/held-tag'); // parked: a held head is not streamed
  await sleep(100); // the first part on its way (a sync point, nothing asserted on it)
  s.resetAndDestroy();
  await leaderGone(proxy, o, '/held-tag');
  assert.match(proxy.errors(), /GET \/held-tag goes on into the cache/);
  o.release('/held-tag');
  const w = await waiter;
  assert.equal(w.status, 200);
  assert.ok(w.body.equals(body), 'byte-exact');
  assert.match(w.headers.etag, /^"i-/, 'the generated tag');
  assert.equal(o.state('/held-tag').requests, 1, 'the origin was asked once');
});

test('a leader that leaves with no one following: the object is still stored whole, and logged once for the client', async (t) => {
  const body = bodyOf(3);
  const { o, proxy } = await setup(t, { '/alone': { body, headers: { 'Cache-Control': 'max-age=300', ETag: '"a"', 'Content-Length': String(SIZE) } } });
  await leaveAfter10k(h1Leader(proxy.port, '/alone'));
  await leaderGone(proxy, o, '/alone');
  o.release('/alone');
  // the fetch's own line, once it ends (a refresh's, internal.c)
  await until(() => proxy.access().filter((l) => l.target === '/alone').length >= 2 || o.state('/alone').closedEarly);
  const lines = proxy.access().filter((l) => l.target === '/alone');
  const hit = await get(proxy.port, '/alone');
  assert.match(hit.headers['cache-status'], /hit/);
  assert.ok(hit.body.equals(body), 'stored whole');
  assert.equal(o.state('/alone').requests, 1, 'the origin was asked once');
  assert.equal(lines.length, 2, JSON.stringify(lines));
  assert.ok(lines[0].bytes_out < SIZE, 'the client\'s line: what it was sent');
  assert.ok(lines[1].bytes_out > 0 && lines[0].bytes_out + lines[1].bytes_out <= SIZE + 1024,
    'the fetch\'s line counts only what came after');
});

test('an uncacheable response (no-store): a leader that leaves closes the origin connection, as before', async (t) => {
  const body = bodyOf(4);
  const { o, proxy } = await setup(t, { '/nostore': { body, headers: { 'Cache-Control': 'no-store', 'Content-Length': String(SIZE) } } });
  await leaveAfter10k(h1Leader(proxy.port, '/nostore'));
  await until(() => o.state('/nostore').closedEarly);
  assert.equal(o.state('/nostore').closedEarly, true, 'the origin saw the connection close');
  assert.doesNotMatch(proxy.errors(), /goes on into the cache/);
  await until(() => proxy.access().some((l) => l.target === '/nostore'));
  assert.equal(proxy.access().filter((l) => l.target === '/nostore').length, 1, 'logged once');
});

// Past cache.max_object_size it goes on unstored for its follower
// (collapsed-large.test.mjs); past cache.max_stream_buffer it stops.
test('a background fetch that outgrows cache.max_stream_buffer mid-body stops, and its follower is cut cleanly', async (t) => {
  const body = bodyOf(5);
  // chunked: the size is learnt as it comes; 512 KiB: past FIRST, short of SIZE
  const { o, proxy } = await setup(t, { '/grows': { body, headers: { 'Cache-Control': 'max-age=300' } } },
    'cache:\n  max_object_size: 512KiB\n  max_stream_buffer: 768KiB\n');
  const leader = await h1Leader(proxy.port, '/grows');
  const follower = await h1Follower(proxy.port, '/grows');
  leader.leave();
  await leaderGone(proxy, o, '/grows');
  assert.match(proxy.errors(), /goes on into the cache/, 'under the limit so far: the fetch went on');
  o.release('/grows');
  const f = await follower.done;
  assert.equal(f.complete, false, 'never a truncated body presented as whole');
  assert.ok(f.body.length < SIZE);
  await until(() => o.state('/grows').closedEarly);
  assert.equal(o.state('/grows').closedEarly, true, 'the fetch stopped: the origin saw the close');
  assert.match(proxy.errors(), /GET \/grows: background fetch stopped: too-large/);
  // the leader's line, the follower's, and the fetch's own
  await until(() => proxy.access().filter((l) => l.target === '/grows').length >= 3);
  assert.equal(proxy.access().filter((l) => l.target === '/grows').length, 3, JSON.stringify(proxy.access()));
  const again = await get(proxy.port, '/grows', { headers: { 'Cache-Control': 'only-if-cached' } });
  assert.equal(again.status, 504, 'nothing stored');
});

test('cache.background_fetches bounds background fetches too: at the limit + 1 a leaving client ends its fetch', async (t) => {
  const b1 = bodyOf(6);
  const b2 = bodyOf(7);
  const hdr = (tag) => ({ 'Cache-Control': 'max-age=300', ETag: `"${tag}"`, 'Content-Length': String(SIZE) });
  const { o, proxy } = await setup(t, { '/one': { body: b1, headers: hdr('1') }, '/two': { body: b2, headers: hdr('2') } },
    'cache:\n  background_fetches: 1\n');
  await leaveAfter10k(h1Leader(proxy.port, '/one'));
  await until(() => /GET \/one goes on into the cache/.test(proxy.errors()));
  assert.match(proxy.errors(), /GET \/one goes on into the cache/, 'the first goes on');
  await leaveAfter10k(h1Leader(proxy.port, '/two'));
  await until(() => o.state('/two').closedEarly);
  assert.equal(o.state('/two').closedEarly, true, 'the second, past the limit, ends with its client');
  assert.doesNotMatch(proxy.errors(), /GET \/two goes on/);
  o.release('/one');
  await until(() => o.state('/one').finished && proxy.access().filter((l) => l.target === '/one').length >= 2);
  const hit = await get(proxy.port, '/one');
  assert.match(hit.headers['cache-status'], /hit/);
  assert.ok(hit.body.equals(b1));
});

test('a background fetch whose origin goes quiet ends at timeouts.upstream_idle: nothing stored, its follower cut', async (t) => {
  const body = bodyOf(9);
  const { o, proxy } = await setup(t, { '/quiet': { body, headers: { 'Cache-Control': 'max-age=300', ETag: '"q"', 'Content-Length': String(SIZE) } } },
    'timeouts:\n  upstream_idle: 300ms\n');
  const leader = await h1Leader(proxy.port, '/quiet');
  const follower = await h1Follower(proxy.port, '/quiet');
  leader.leave();
  await leaderGone(proxy, o, '/quiet');
  assert.match(proxy.errors(), /goes on into the cache/);
  // never released: the origin sends nothing more
  const f = await follower.done;
  assert.equal(f.complete, false, 'cut, not presented as whole');
  await until(() => o.state('/quiet').closedEarly);
  assert.equal(o.state('/quiet').closedEarly, true, 'the origin connection was closed');
  assert.match(proxy.errors(), /upstream .*: idle timeout/);
  const again = await get(proxy.port, '/quiet', { headers: { 'Cache-Control': 'only-if-cached' } });
  assert.equal(again.status, 504, 'nothing stored');
});

test('SIGTERM during a background fetch: the drain ends it in bounded time and idemcache exits 0', async (t) => {
  const body = bodyOf(8);
  const { o, proxy } = await setup(t, { '/held': { body, headers: { 'Cache-Control': 'max-age=300', ETag: '"h"', 'Content-Length': String(SIZE) } } },
    'timeouts:\n  drain: 300ms\n');
  await leaveAfter10k(h1Leader(proxy.port, '/held'));
  await leaderGone(proxy, o, '/held');
  // the origin holds the rest until the test ends: only the drain can end it
  const r = await proxy.stop();
  assert.equal(r.code, 0);
  await until(() => o.state('/held').closedEarly);
  assert.equal(o.state('/held').closedEarly, true, 'the origin connection was closed');
});
