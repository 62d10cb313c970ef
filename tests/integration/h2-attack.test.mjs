// HTTP/2 bad input (issue 15), with hand-built frames: each gets the RFC's
// stream or connection error (RFC 9113 §5.4) and the process stays up
// (a clean request works after it, and it exits 0 with no sanitizer
// report). The h2 limits are tested at limit and limit + 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startProxy, startOrigin, startRawOrigin, tmpFile, sleep, proxyInFront } from './lib.mjs';
import { T, F, E, frame, u32, settings, request, block, status, connect, goaway, rstOn, headersOn, errorCode } from './h2-frames.mjs';

async function setup(t, yaml = '') {
  return proxyInFront(t, async (req, res) => {
    if (req.url.startsWith('/slow')) await sleep(300);
    res.setHeader('Cache-Control', req.url.startsWith('/big') ? 'max-age=60' : 'no-store');
    res.end(req.url.startsWith('/big') ? 'x'.repeat(300000) : `ok ${req.method} ${req.url}`);
  }, yaml, 'h2-attack.yaml');
}

// The process still answers h2 on a fresh connection.
async function stillUp(port) {
  const c = await connect(port);
  c.send(request(1, { path: '/after' }));
  const h = await c.waitFor(headersOn(1));
  c.close();
  assert.ok(h, 'a fresh connection is answered');
  assert.equal(status(h.payload), 200);
}

test('rapid reset: max_resets_per_10s RST_STREAMs pass, one more gets GOAWAY and the close', async (t) => {
  const { p } = await setup(t, 'h2:\n  max_resets_per_10s: 20\n');
  const burst = (c, n) => {
    const out = [];
    for (let i = 0; i < n; i++) out.push(request(2 * i + 1, { path: '/slow' }), frame(T.RST_STREAM, 0, 2 * i + 1, u32(E.CANCEL)));
    c.send(Buffer.concat(out));
  };
  const a = await connect(p.port);
  burst(a, 20);
  a.send(frame(T.PING, 0, 0, Buffer.alloc(8, 1)));
  const pong = await a.waitFor((f) => f.type === T.PING && (f.flags & F.ACK));
  assert.ok(pong, 'at the limit: still served');
  assert.equal(a.frames.find(goaway), undefined);
  a.close();
  const b = await connect(p.port);
  burst(b, 21);
  const g = await b.waitFor(goaway);
  assert.ok(g, 'GOAWAY past the limit');
  // RFC 9113 §7 and the CVE-2023-44487 advice: ENHANCE_YOUR_CALM (our
  // bucket trips before nghttp2's, whose GOAWAY says INTERNAL_ERROR)
  assert.equal(errorCode(g), E.ENHANCE_YOUR_CALM, 'Rapid Reset: GOAWAY(ENHANCE_YOUR_CALM)');
  assert.ok(await b.waitClosed(), 'and the connection closes');
  await stillUp(p.port);
});

test('CONTINUATION without end: a connection error, the connection closed', async (t) => {
  const { p } = await setup(t);
  const c = await connect(p.port);
  const parts = [frame(T.HEADERS, 0, 1, block([[':method', 'GET'], [':scheme', 'http'], [':authority', 'h'], [':path', '/']]))];
  for (let i = 0; i < 50; i++) parts.push(frame(T.CONTINUATION, 0, 1, block([[`x-c${i}`, 'v'.repeat(100)]])));
  c.send(Buffer.concat(parts));
  const g = await c.waitFor(goaway);
  assert.ok(g, 'GOAWAY');
  assert.equal(errorCode(g), E.ENHANCE_YOUR_CALM, 'more than 8 CONTINUATION frames (nghttp2)');
  assert.ok(await c.waitClosed());
  await stillUp(p.port);
});

for (const [name, one] of [
  ['PING', frame(T.PING, 0, 0, Buffer.alloc(8, 7))],
  ['SETTINGS', settings([[4, 65535]])],
]) {
  test(`${name} flood from a client that reads nothing: reading stops at WRITE_HIGH_WATER, closed at client_send_idle`, async (t) => {
    const { p } = await setup(t, 'timeouts:\n  client_send_idle: 1s\n');
    const c = await connect(p.port, { read: false });
    c.send(Buffer.concat(Array.from({ length: 1200000 }, () => one)));
    assert.ok(await c.waitClosed(15000), 'closed');
    await stillUp(p.port);
  });
}

test('a header list over h2.max_header_list gets 431 on its stream; at the limit it is served', async (t) => {
  const { p } = await setup(t, 'h2:\n  max_header_list: 1KiB\n');
  const c = await connect(p.port);
  // RFC 9113 §6.5.2: name + value + 32 per field. The pseudo-headers:
  // :method GET 42, :scheme http 43, :authority h2.test 49, :path /x 39
  const base = 42 + 43 + 49 + 39;
  const fill = (n) => [['x-fill', 'v'.repeat(n - base - 32 - 6)]];
  c.send(request(1, { path: '/x', extra: fill(1024) }));
  const ok = await c.waitFor(headersOn(1));
  assert.equal(status(ok.payload), 200, 'exactly at the limit');
  c.send(request(3, { path: '/x', extra: fill(1025) }));
  const over = await c.waitFor(headersOn(3));
  assert.equal(status(over.payload), 431, 'one byte over');
  // the connection goes on
  c.send(request(5, { path: '/x' }));
  assert.equal(status((await c.waitFor(headersOn(5))).payload), 200);
  c.close();
});

test('content-length that disagrees with the DATA: RST_STREAM(PROTOCOL_ERROR), the connection goes on', async (t) => {
  const { p, origin } = await setup(t);
  const c = await connect(p.port);
  c.send(request(1, { method: 'POST', path: '/cl', extra: [['content-length', '10']], flags: F.END_HEADERS }));
  c.send(frame(T.DATA, F.END_STREAM, 1, Buffer.from('hello')));
  const r = await c.waitFor(rstOn(1));
  assert.ok(r);
  assert.equal(errorCode(r), E.PROTOCOL_ERROR);
  c.send(request(3, { path: '/next' }));
  assert.equal(status((await c.waitFor(headersOn(3))).payload), 200);
  c.close();
  assert.equal(origin.seen.filter((s) => s.url === '/cl' && s.body.length === 10).length, 0);
});

test('uppercase field names and invalid pseudo-headers: RST_STREAM(PROTOCOL_ERROR), nothing reaches the origin', async (t) => {
  const { p, origin } = await setup(t);
  const c = await connect(p.port);
  c.send(request(1, { path: '/upper', extra: [['X-Upper', '1']] }));
  c.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 3, block([[':method', 'GET'], [':scheme', 'http'], [':authority', 'h'], [':path', '/bogus'], [':bogus', '1']])));
  c.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 5, block([[':method', 'GET'], [':scheme', 'http'], ['accept', '*/*'], [':path', '/late']])));
  c.send(request(7, { path: '/conn', extra: [['connection', 'close']] }));
  for (const id of [1, 3, 5, 7]) {
    const r = await c.waitFor(rstOn(id));
    assert.ok(r, `stream ${id} reset`);
    assert.equal(errorCode(r), E.PROTOCOL_ERROR, `stream ${id}`);
  }
  c.send(request(9, { path: '/fine' }));
  assert.equal(status((await c.waitFor(headersOn(9))).payload), 200);
  c.close();
  assert.deepEqual(origin.seen.map((s) => s.url), ['/fine']);
});

test('CONNECT and extended CONNECT get 501 in this release', async (t) => {
  const { p } = await setup(t);
  const c = await connect(p.port);
  c.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 1, block([[':method', 'CONNECT'], [':authority', 'example.com:443']])));
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 501);
  c.close();
});

test('a stream ID going backwards is a connection error PROTOCOL_ERROR', async (t) => {
  const { p } = await setup(t);
  const c = await connect(p.port);
  c.send(request(5, { path: '/five' }));
  await c.waitFor(headersOn(5));
  c.send(request(3, { path: '/three' }));
  const g = await c.waitFor(goaway);
  assert.ok(g);
  assert.equal(errorCode(g), E.PROTOCOL_ERROR);
  assert.ok(await c.waitClosed());
  await stillUp(p.port);
});

test('DATA on a closed stream: STREAM_CLOSED', async (t) => {
  const { p } = await setup(t);
  const c = await connect(p.port);
  c.send(request(1, { path: '/done' }));
  await c.waitFor((f) => f.type === T.DATA && f.stream === 1 && (f.flags & F.END_STREAM));
  c.send(frame(T.DATA, F.END_STREAM, 1, Buffer.from('late')));
  const e = await c.waitFor((f) => f.type === T.GOAWAY || (f.type === T.RST_STREAM && f.stream === 1));
  assert.ok(e, 'an error frame');
  assert.equal(errorCode(e), E.STREAM_CLOSED);
  await stillUp(p.port);
});

test('h2.max_concurrent_streams: the streams past it are refused (REFUSED_STREAM)', async (t) => {
  const { p } = await setup(t, 'h2:\n  max_concurrent_streams: 2\n');
  const c = await connect(p.port);
  c.send(settings([])); // wait for our SETTINGS to be acknowledged first
  await c.waitFor((f) => f.type === T.SETTINGS && (f.flags & F.ACK));
  await sleep(50);
  c.send(Buffer.concat([request(1, { path: '/slow1' }), request(3, { path: '/slow3' }), request(5, { path: '/slow5' })]));
  const r = await c.waitFor(rstOn(5));
  assert.ok(r);
  assert.equal(errorCode(r), E.REFUSED_STREAM);
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 200, 'the first two are served');
  assert.equal(status((await c.waitFor(headersOn(3))).payload), 200);
  c.close();
});

test('h2.max_read_ahead: a body read ahead to key it that would pass the budget is refused; within it, served', async (t) => {
  const { p, origin } = await setup(t, [
    'h2:\n  max_read_ahead: 64KiB\n  initial_window: 16KiB\n',
    'rules:\n  - path: "/search"\n    methods: [POST]\n    cache: true\n    ttl: 60s\n',
  ].join(''));
  const s = http2.connect(`http://127.0.0.1:${p.port}`);
  t.after(() => s.close());
  const post = (n) => new Promise((resolve) => {
    const req = s.request({ ':method': 'POST', ':path': '/search', 'content-type': 'application/json', 'content-length': String(n) });
    let head;
    req.on('response', (h) => { head = h; });
    req.on('data', () => {});
    req.on('end', () => resolve({ status: head && head[':status'] }));
    req.on('error', (e) => resolve({ error: e.code, rst: req.rstCode }));
    req.end(Buffer.alloc(n, 'a'));
  });
  const small = await post(40 * 1024);
  assert.equal(small.status, 200, 'within the budget');
  const big = await post(200 * 1024);
  assert.equal(big.rst, E.REFUSED_STREAM, 'past it');
  assert.equal(origin.seen.filter((x) => x.body.length === 200 * 1024).length, 0);
  await stillUp(p.port);
});

test('a client that never opens its window is closed at timeouts.client_send_idle', async (t) => {
  const { p } = await setup(t, 'timeouts:\n  client_send_idle: 1s\n');
  const c = await connect(p.port, { settingsPairs: [[4, 0]] }); // SETTINGS_INITIAL_WINDOW_SIZE 0
  c.send(request(1, { path: '/big' }));
  assert.ok(await c.waitFor(headersOn(1)), 'the head goes (HEADERS are not flow-controlled)');
  assert.ok(await c.waitClosed(15000), 'closed once the send idle timeout passes');
  await stillUp(p.port);
});

test('a request body that stops coming: its stream gets 408 at timeouts.client_body_idle, the connection stays', async (t) => {
  const { p, origin } = await setup(t, 'timeouts:\n  client_body_idle: 1s\n');
  const c = await connect(p.port);
  t.after(() => c.close());
  c.send(request(1, { method: 'POST', path: '/nocache/upload', extra: [['content-length', '10']], flags: F.END_HEADERS }));
  c.send(frame(T.DATA, 0, 1, Buffer.from('abc')));
  const h = await c.waitFor(headersOn(1), 15000);
  assert.ok(h, 'answered once the body idle timeout passes');
  assert.equal(status(h.payload), 408);
  const r = await c.waitFor(rstOn(1));
  assert.equal(r && errorCode(r), E.NO_ERROR, 'then RST_STREAM(NO_ERROR): its body is not wanted (RFC 9113 §8.1)');
  c.send(request(3, { path: '/after-408' }));
  assert.equal(status((await c.waitFor(headersOn(3))).payload), 200, 'the connection goes on');
  assert.equal(c.frames.find(goaway), undefined);
  assert.equal(origin.seen.filter((s) => s.url === '/nocache/upload').length, 0, 'no partial body reached the origin as whole');
});

// MadeYouReset (CVE-2025-8671): frames that break a rule on a stream the
// client opened (a WINDOW_UPDATE past 2^31-1, DATA past content-length)
// make us send RST_STREAM, which nghttp2's Rapid Reset bucket does not
// count, while each stream may have started an origin fetch. They spend
// h2.max_resets_per_10s too: at the limit served, past it GOAWAY.
for (const [kind, provoke] of [
  ['WINDOW_UPDATE overflow', (id) => [request(id, { path: `/nc/myr-${id}` }), frame(T.WINDOW_UPDATE, 0, id, u32(0x7fffffff))]],
  ['DATA past content-length', (id) => [request(id, { method: 'POST', path: `/nc/myr-${id}`, extra: [['content-length', '1']], flags: F.END_HEADERS }), frame(T.DATA, F.END_STREAM, id, Buffer.from('xy'))]],
]) {
  test(`provoked stream resets (MadeYouReset, ${kind}) count against h2.max_resets_per_10s`, async (t) => {
    const { p } = await setup(t, 'h2:\n  max_resets_per_10s: 10\n');
    const run = async (c, n) => {
      // a few streams per write, as a client would over time
      for (let i = 0; i < n; i += 2) {
        c.send(Buffer.concat([...provoke(2 * i + 1), ...(i + 1 < n ? provoke(2 * i + 3) : [])]));
        await c.waitFor((f) => (f.type === T.RST_STREAM && f.stream === 2 * i + 1) || f.type === T.GOAWAY);
        if (c.frames.find(goaway)) break;
      }
    };
    const a = await connect(p.port);
    await run(a, 10);
    a.send(frame(T.PING, 0, 0, Buffer.alloc(8, 1)));
    assert.ok(await a.waitFor((f) => f.type === T.PING && (f.flags & F.ACK)), 'at the limit: still served');
    assert.equal(a.frames.find(goaway), undefined);
    a.close();
    const b = await connect(p.port);
    await run(b, 40);
    const g = await b.waitFor(goaway);
    assert.ok(g, 'GOAWAY past the limit');
    assert.equal(errorCode(g), E.ENHANCE_YOUR_CALM);
    assert.ok(await b.waitClosed(), 'and the connection closes');
    assert.ok(b.frames.filter((f) => f.type === T.RST_STREAM).length < 40, 'not every stream was taken');
    await stillUp(p.port);
  });
}

// An origin that answers garbage or goes away: h1 gets 502 and the close;
// an h2 stream got RST_STREAM(INTERNAL_ERROR) with no response at all,
// since the reset went with the 502 still queued. Now the 502 goes, then
// the stream ends; a response broken off mid-body is still reset (never
// ended as if whole).
test('an origin failure is a 502 on the stream, not a bare RST_STREAM; a body broken off is reset', async (t) => {
  let cutting;
  const origin = await startRawOrigin((s) => {
    s.once('data', (d) => {
      const path = d.toString().split(' ')[1];
      if (path === '/garbage') s.write('HTTZ garbage\r\n\r\n');
      else if (path === '/twolengths') s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello');
      else if (path === '/cut') {
        s.write('HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n');
        s.once('cut', () => s.destroy());
        cutting = s;
        return;
      }
      if (path !== '/cut') s.destroy();
    });
  });
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => {
    const r = await p.stop();
    await origin.close();
    assert.equal(r.code, 0, 'exits cleanly');
  });
  // a fresh connection each: status() reads a :status HPACK has not indexed yet
  const open = async () => { const c = await connect(p.port); t.after(() => c.close()); return c; };
  for (const path of ['/garbage', '/twolengths', '/gone']) {
    const c = await open();
    c.send(request(1, { path }));
    const f = await c.waitFor((f) => (f.type === T.HEADERS || f.type === T.RST_STREAM) && f.stream === 1);
    assert.ok(f, `${path}: an answer`);
    assert.equal(f.type, T.HEADERS, `${path}: HEADERS, not RST_STREAM(${f.type === T.RST_STREAM ? errorCode(f) : ''})`);
    assert.equal(status(f.payload), 502, path);
    assert.ok(await c.waitFor((f) => f.type === T.DATA && f.stream === 1 && (f.flags & F.END_STREAM)), `${path}: its body ends the stream`);
  }
  // a POST whose body is still coming: the 502, then RST_STREAM(NO_ERROR)
  const post = await open();
  post.send(request(1, { method: 'POST', path: '/gone', extra: [['content-length', '100']], flags: F.END_HEADERS }));
  assert.equal(status((await post.waitFor(headersOn(1))).payload), 502);
  const r = await post.waitFor(rstOn(1));
  assert.ok(r, 'the unread body is stopped');
  assert.equal(errorCode(r), E.NO_ERROR);
  // the head went, the body broke off: the stream is reset, not ended
  const c = await open();
  c.send(request(1, { path: '/cut' }));
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 200);
  assert.ok(await c.waitFor((f) => f.type === T.DATA && f.stream === 1), 'the first bytes');
  cutting.emit('cut');
  const cut = await c.waitFor((f) => f.stream === 1 && ((f.type === T.DATA && (f.flags & F.END_STREAM)) || f.type === T.RST_STREAM));
  assert.equal(cut.type, T.RST_STREAM, 'a truncated body is never ended as if whole');
  assert.equal(errorCode(cut), E.INTERNAL_ERROR);
});
