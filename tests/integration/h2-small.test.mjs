// HTTP/2 details left by issue 15's closing note, each against the real
// binary: empty cookie crumbs (RFC 9113 §8.2.3), one stalled request body
// on a shared connection (timeouts.client_body_idle), request trailers
// (RFC 9110 §6.5, RFC 9113 §8.1), skipped stream ids (§5.1.1) and the
// Rapid Reset GOAWAY's code (§7, CVE-2023-44487).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startProxy, startOrigin, startRawOrigin, tmpFile, get, sleep, proxyInFront } from './lib.mjs';
import { T, F, E, frame, request, block, status, connect, goaway, rstOn, headersOn, errorCode } from './h2-frames.mjs';

async function setup(t, handler, yaml = '') {
  return proxyInFront(t, handler, yaml, 'h2-small.yaml');
}

// The DATA bytes the server sent on one stream so far.
const dataOn = (c, stream) =>
  Buffer.concat(c.frames.filter((f) => f.type === T.DATA && f.stream === stream).map((f) => f.payload)).toString();
const endOn = (stream) => (f) => (f.type === T.DATA || f.type === T.HEADERS) && f.stream === stream && (f.flags & F.END_STREAM);

test('empty cookie crumbs: an entry stored with Vary: Cookie over h1 is a hit over h2 with an extra empty crumb', async (t) => {
  const { p, origin } = await setup(t, (req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.setHeader('Vary', 'Cookie');
    res.end(`cookie [${req.headers.cookie}]`);
  });
  const first = await get(p.port, '/crumbs', { headers: { Cookie: 'a=1' } });
  assert.equal(first.status, 200);
  assert.equal(first.body.toString(), 'cookie [a=1]');
  const c = await connect(p.port);
  t.after(() => c.close());
  // RFC 9113 §8.2.3: "a=1" and "" joined are "a=1", not "a=1; "
  const authority = `127.0.0.1:${p.port}`; // the h1 request's Host: the same key
  c.send(request(1, { path: '/crumbs', authority, extra: [['cookie', 'a=1'], ['cookie', '']] }));
  c.send(request(3, { path: '/crumbs', authority, extra: [['cookie', ''], ['cookie', 'a=1'], ['cookie', '']] }));
  for (const id of [1, 3]) {
    const h = await c.waitFor(headersOn(id));
    assert.equal(status(h.payload), 200);
    assert.ok(await c.waitFor(endOn(id)));
    assert.equal(dataOn(c, id), 'cookie [a=1]', `stream ${id}: the stored variant`);
  }
  assert.equal(origin.seen.filter((s) => s.url === '/crumbs').length, 1, 'both h2 requests were hits');
  // and what goes upstream carries no empty crumb either
  c.send(request(5, { path: '/crumbs-up', extra: [['cookie', 'b=2'], ['cookie', '']] }));
  assert.ok(await c.waitFor(endOn(5)));
  assert.equal(origin.seen.find((s) => s.url === '/crumbs-up').headers.cookie, 'b=2');
});

// RFC 9110 §6.5: a proxy may forward trailers or discard them. The HTTP/1
// front discards chunked request trailers (http/body.c, RFC 9112 §7.1.2),
// and h2 does the same: the body reaches the origin whole, the trailer
// fields never do, nor any key.
test('request trailers: dropped, the request still succeeds; no trailer field reaches the origin or a key', async (t) => {
  const { p, origin } = await setup(t, (req, res, body) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.setHeader('Vary', 'x-v');
    res.end(`${req.method} v=[${req.headers['x-v']}] body=[${body}]`);
  });
  const authority = `127.0.0.1:${p.port}`;
  const c = await connect(p.port);
  t.after(() => c.close());
  // a POST: HEADERS, DATA, then trailers with END_STREAM
  c.send(request(1, { method: 'POST', path: '/tr', authority, flags: F.END_HEADERS }));
  c.send(frame(T.DATA, 0, 1, Buffer.from('hello')));
  c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, block([['x-trailer', 'secret'], ['x-v', '9']])));
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 200);
  assert.ok(await c.waitFor(endOn(1)));
  assert.equal(dataOn(c, 1), 'POST v=[undefined] body=[hello]');
  const post = origin.seen.find((s) => s.url === '/tr');
  assert.equal(post.body.toString(), 'hello');
  assert.equal(post.headers['x-trailer'], undefined);
  assert.equal(JSON.stringify(post.rawHeaders).includes('secret'), false);
  // a GET stored over h1 with Vary: x-v; over h2 the same x-v in the head
  // and another in trailers: the stored variant, the trailer not keyed
  assert.equal((await get(p.port, '/tv', { headers: { 'x-v': '1' } })).body.toString(), 'GET v=[1] body=[]');
  c.send(request(3, { path: '/tv', authority, extra: [['x-v', '1']], flags: F.END_HEADERS }));
  c.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 3, block([['x-v', '2']])));
  assert.equal(status((await c.waitFor(headersOn(3))).payload), 200);
  assert.ok(await c.waitFor(endOn(3)));
  assert.equal(dataOn(c, 3), 'GET v=[1] body=[]');
  assert.equal(origin.seen.filter((s) => s.headers['x-v'] === '2').length, 0, 'x-v: 2 never reached the origin');
});

// RFC 9113 §8.1: trailers are a HEADERS with END_STREAM and no
// pseudo-header; anything else is malformed: a stream error, the
// connection goes on.
for (const [name, trailer] of [
  ['without END_STREAM', (id) => frame(T.HEADERS, F.END_HEADERS, id, block([['x-trailer', 'v']]))],
  ['with a pseudo-header', (id) => frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, block([[':path', '/other'], ['x-trailer', 'v']]))],
]) {
  test(`request trailers ${name}: RST_STREAM(PROTOCOL_ERROR), nothing forwarded as a request, the connection goes on`, async (t) => {
    const { p, origin } = await setup(t, (req, res) => {
      res.setHeader('Cache-Control', 'no-store');
      res.end(`ok ${req.url}`);
    });
    const c = await connect(p.port);
    t.after(() => c.close());
    c.send(request(1, { method: 'POST', path: '/bad-trailer', extra: [['content-type', 'text/plain']], flags: F.END_HEADERS }));
    c.send(frame(T.DATA, 0, 1, Buffer.from('part')));
    c.send(trailer(1));
    const r = await c.waitFor(rstOn(1));
    assert.ok(r, 'RST_STREAM');
    assert.equal(errorCode(r), E.PROTOCOL_ERROR);
    c.send(request(3, { path: '/next' }));
    assert.equal(status((await c.waitFor(headersOn(3))).payload), 200);
    assert.equal(c.frames.find(goaway), undefined);
    assert.equal(origin.seen.filter((s) => s.url === '/other').length, 0);
    assert.equal(origin.seen.filter((s) => s.url === '/bad-trailer' && s.body.toString() === 'part').length, 0, 'never forwarded as if whole');
  });
}

// RFC 9113 §5.1.1: an ID the client skipped is closed for good; a HEADERS
// on it is a connection error PROTOCOL_ERROR. nghttp2 ignores such a
// HEADERS, and idemcache kept only 8 skipped ranges: a client skipping
// one ID in two had its 9th and later skipped IDs ignored, the request on
// one never answered and no error.
test('skipped stream ids: a HEADERS on the 11th ID skipped in a pattern is a connection error PROTOCOL_ERROR', async (t) => {
  const { p } = await setup(t, (req, res) => res.end('ok'));
  const c = await connect(p.port);
  t.after(() => c.close());
  // 1, 5, 9, ... 45: 3, 7, ... 43 skipped (11 ranges)
  for (let id = 1; id <= 45; id += 4) {
    c.send(request(id, { path: `/s${id}` }));
    assert.ok(await c.waitFor(endOn(id)), `stream ${id} answered`);
  }
  c.send(request(43, { path: '/skipped' }));
  // a PING after it: its ACK without a GOAWAY before it would mean the
  // HEADERS was ignored
  c.send(frame(T.PING, 0, 0, Buffer.alloc(8, 3)));
  const f = await c.waitFor((x) => x.type === T.GOAWAY || (x.type === T.PING && (x.flags & F.ACK)));
  assert.ok(f, 'an answer');
  assert.equal(f.type, T.GOAWAY, 'GOAWAY, not the HEADERS ignored');
  assert.equal(errorCode(f), E.PROTOCOL_ERROR);
  assert.equal(f.payload.readUInt32BE(0) & 0x7fffffff, 45, 'last stream id: the highest taken');
  assert.ok(await c.waitClosed());
});

test('skipped stream ids: a HEADERS on a closed stream is a connection error; trailers crossing our RST_STREAM are ignored', async (t) => {
  const { p } = await setup(t, (req, res) => res.end('ok'));
  const a = await connect(p.port);
  t.after(() => a.close());
  // a stream we reset while the client was still sending (400: host
  // differs from :authority, then RST_STREAM(NO_ERROR), §8.1): its
  // trailers, sent before our reset reached the client, are ignored
  a.send(request(1, { method: 'POST', path: '/p', extra: [['host', 'other.test']], flags: F.END_HEADERS }));
  assert.equal(status((await a.waitFor(headersOn(1))).payload), 400);
  assert.ok(await a.waitFor(rstOn(1)));
  a.send(frame(T.DATA, 0, 1, Buffer.from('late')));
  a.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, block([['x-t', 'v']])));
  a.send(request(3, { path: '/next' }));
  assert.equal(status((await a.waitFor(headersOn(3))).payload), 200);
  assert.equal(a.frames.find(goaway), undefined, 'no connection error');
  // a stream both sides ended: a HEADERS on it is a connection error
  // (nghttp2's STREAM_CLOSED while it remembers the stream, §5.1)
  assert.ok(await a.waitFor(endOn(3)));
  a.send(request(3, { path: '/again' }));
  const g = await a.waitFor(goaway);
  assert.ok(g, 'GOAWAY');
  assert.equal(errorCode(g), E.STREAM_CLOSED);
});

test('skipped stream ids: the body and trailers of a stream refused past h2.max_concurrent_streams are ignored, no connection error', async (t) => {
  let release;
  const held = new Promise((r) => { release = r; });
  const { p } = await setup(t, async (req, res) => {
    if (req.url === '/slow') await held;
    res.end('ok');
  }, 'h2:\n  max_concurrent_streams: 1\n');
  t.after(() => release());
  const c = await connect(p.port);
  t.after(() => c.close());
  // stream 3 is refused (REFUSED_STREAM, never opened: nghttp2 keeps no
  // stream for it); its DATA and trailers were on their way (§8.7)
  c.send(Buffer.concat([
    request(1, { path: '/slow' }),
    request(3, { method: 'POST', path: '/refused', flags: F.END_HEADERS }),
    frame(T.DATA, 0, 3, Buffer.from('body')),
    frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 3, block([['x-t', 'v']])),
    frame(T.PING, 0, 0, Buffer.alloc(8, 4)),
  ]));
  const r = await c.waitFor(rstOn(3));
  assert.equal(r && errorCode(r), E.REFUSED_STREAM);
  assert.ok(await c.waitFor((x) => x.type === T.PING && (x.flags & F.ACK)), 'PING answered');
  assert.equal(c.frames.find(goaway), undefined, 'no connection error');
  release();
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 200);
});

test('skipped stream ids: a PRIORITY on a skipped ID does not let a HEADERS open it later', async (t) => {
  const { p } = await setup(t, (req, res) => res.end('ok'));
  const c = await connect(p.port);
  t.after(() => c.close());
  // 1, 5, ... 45 as above, then PRIORITY on 43 (nghttp2 makes an idle
  // stream of it, RFC 7540 §5.3) and a HEADERS on 43
  for (let id = 1; id <= 45; id += 4) {
    c.send(request(id, { path: `/s${id}` }));
    assert.ok(await c.waitFor(endOn(id)));
  }
  c.send(frame(T.PRIORITY, 0, 43, Buffer.from([0, 0, 0, 0, 15])));
  c.send(request(43, { path: '/skipped' }));
  c.send(frame(T.PING, 0, 0, Buffer.alloc(8, 3)));
  const f = await c.waitFor((x) => x.type === T.GOAWAY || (x.type === T.PING && (x.flags & F.ACK)));
  assert.equal(f && f.type, T.GOAWAY, 'GOAWAY, not the HEADERS ignored');
  assert.equal(errorCode(f), E.PROTOCOL_ERROR);
});

// timeouts.client_body_idle on h2: one stream whose request body stalls
// ends alone (408, its response not begun); the connection and its other
// streams go on. It used to close the whole connection.
test('client_body_idle: a stalled request body ends its own stream with 408; the other streams on the connection go on', async (t) => {
  let release;
  const held = new Promise((r) => { release = r; });
  const { p, origin } = await setup(t, async (req, res, body) => {
    if (req.url === '/held') await held;
    res.setHeader('Cache-Control', 'no-store');
    res.end(`${req.method} ${req.url} [${body}]`);
  }, 'timeouts:\n  client_body_idle: 1s\n');
  t.after(() => release());
  const s = http2.connect(`http://127.0.0.1:${p.port}`);
  t.after(() => s.destroy());
  let goaways = 0;
  s.on('goaway', () => goaways++);
  s.on('error', () => {});
  const exchange = (headers, body, { end = true } = {}) => {
    const req = s.request(headers, { endStream: body === undefined && end });
    const out = new Promise((resolve) => {
      const chunks = [];
      let head = {};
      req.on('response', (h) => { head = h; });
      req.on('data', (c) => chunks.push(c));
      req.on('close', () => resolve({ status: head[':status'], body: Buffer.concat(chunks).toString(), rst: req.rstCode }));
      req.on('error', () => {});
    });
    if (body !== undefined) (end ? req.end(body) : req.write(body));
    return { req, out };
  };
  // in flight the whole time: a GET the origin holds
  const slow = exchange({ ':path': '/held' });
  // the stalled one: 3 bytes of 10, then nothing
  const stalled = exchange({ ':method': 'POST', ':path': '/stalled', 'content-length': '10' }, 'abc', { end: false });
  // a whole one, after the stalled one began
  const whole = await exchange({ ':method': 'POST', ':path': '/whole' }, 'all of it').out;
  assert.equal(whole.status, 200);
  assert.equal(whole.body, 'POST /whole [all of it]');
  // the connection stays busy (PINGs) while the stalled body waits: the
  // stream's own clock runs, not the connection's
  let stalledDone = false;
  stalled.out.then(() => { stalledDone = true; });
  for (let i = 0; i < 40 && !stalledDone; i++) {
    await new Promise((r) => s.ping(() => r()));
    await sleep(250);
  }
  assert.ok(stalledDone, 'ended while the connection was busy with other frames');
  const st = await stalled.out;
  assert.equal(st.status, 408, 'the stalled stream: 408');
  assert.match(st.body, /request body timeout/);
  release();
  const held2 = await slow.out;
  assert.equal(held2.status, 200, 'the stream in flight meanwhile finished');
  assert.equal(held2.body, 'GET /held []');
  const third = await exchange({ ':path': '/third' }).out;
  assert.equal(third.status, 200, 'a third request on the same connection');
  assert.equal(goaways, 0, 'no GOAWAY');
  assert.equal(s.closed || s.destroyed, false, 'the connection stays open');
  assert.equal(origin.seen.filter((x) => x.url === '/stalled').length, 0, 'the partial body never reached the origin as whole');
  // the error log names the stream (ids: /held 1, /stalled 3, /whole 5)
  assert.match(p.errors(), /client 127\.0\.0\.1: h2 stream 3: request body idle timeout/);
  assert.doesNotMatch(p.errors(), /h2 stream (1|5): request body idle timeout/);
});

test('client_body_idle: a stalled request body whose response already began is reset (CANCEL); the connection goes on', async (t) => {
  // an origin that answers at the head, before the body: the response
  // begins (200 and 5 bytes) while the client's body stalls
  const origin = await startRawOrigin((sock) => {
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n') && !sock.answered) {
        sock.answered = true;
        sock.write('HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      }
    });
  });
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', tmpFile('h2-small-idle.yaml', 'timeouts:\n  client_body_idle: 1s\n')]);
  t.after(async () => {
    const r = await p.stop();
    await origin.close();
    assert.equal(r.code, 0, 'exits cleanly');
  });
  const c = await connect(p.port);
  t.after(() => c.close());
  c.send(request(1, { method: 'POST', path: '/early', extra: [['content-length', '10']], flags: F.END_HEADERS }));
  c.send(frame(T.DATA, 0, 1, Buffer.from('abc')));
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 200);
  const r = await c.waitFor(rstOn(1), 15000);
  assert.ok(r, 'reset once the body idle timeout passes');
  assert.equal(errorCode(r), E.CANCEL);
  assert.equal(dataOn(c, 1), 'hello');
  c.send(frame(T.PING, 0, 0, Buffer.alloc(8, 5)));
  assert.ok(await c.waitFor((x) => x.type === T.PING && (x.flags & F.ACK)), 'the connection goes on');
  assert.equal(c.frames.find(goaway), undefined);
});
