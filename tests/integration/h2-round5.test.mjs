// HTTP/2 attack round 5 (a fresh look at the h2 front after issue 15):
// each finding against the real binary, with hand-built frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { proxyInFront, get, startProxy, startRawOrigin, tmpFile, sleep } from './lib.mjs';
import { T, F, E, frame, request, block, literalIndexed, indexed, status, connect, rstOn, headersOn, errorCode } from './h2-frames.mjs';

async function setup(t, yaml = '') {
  return proxyInFront(t, (req, res, body) => {
    res.setHeader('Cache-Control', 'no-store');
    res.end(`ok ${req.method} ${req.url} ${body.length}`);
  }, yaml, 'h2-round5.yaml');
}

// CPU time the process has used, in ms (a figure for the log, not asserted)
const cpuMs = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

// A header block split into a HEADERS and CONTINUATIONs of at most 16 KiB
// (SETTINGS_MAX_FRAME_SIZE) each; END_STREAM on the HEADERS if asked.
function headerFrames(stream, payload, endStream) {
  const out = [];
  for (let at = 0; at < payload.length || at === 0; at += 16384) {
    const part = payload.subarray(at, at + 16384);
    const last = at + 16384 >= payload.length;
    out.push(at === 0
      ? frame(T.HEADERS, (endStream ? F.END_STREAM : 0) | (last ? F.END_HEADERS : 0), stream, part)
      : frame(T.CONTINUATION, last ? F.END_HEADERS : 0, stream, part));
    if (last) break;
  }
  return Buffer.concat(out);
}

// Finding 1 (HPACK expansion): a one-byte reference to a 3000-byte
// dynamic table entry is a 3000-byte field, and nghttp2 checks every
// field's value before our callback sees it. A block of 9 frames of such
// references (147 KiB) expanded to 440 MB of values checked after the
// list was already over h2.max_header_list (the answer was a 431 at the
// end of it): 180 ms of CPU a block, 40 blocks 7 s. Past twice the limit
// the rest of the block is no longer decoded field by field: the stream
// is reset; just over the limit it is still a 431.
test('finding 1: a header block whose HPACK references expand it far past h2.max_header_list is reset, not decoded to its end', async (t) => {
  const { p, origin } = await setup(t, 'h2:\n  max_header_list: 4KiB\n');
  const c = await connect(p.port);
  t.after(() => c.close());
  const pseudo = block([[':method', 'GET'], [':scheme', 'http'], [':authority', 'h2.test'], [':path', '/bomb']]);
  // the entry (3000 + 3 + 32 bytes of the 4096 table), then references
  const entry = literalIndexed('x-b', 'a'.repeat(3000));
  const refs = Buffer.alloc(9 * 16384 - pseudo.length - entry.length, indexed(62));
  const before = cpuMs(p.proc.pid);
  c.send(headerFrames(1, Buffer.concat([pseudo, entry, refs]), true));
  const answer = await c.waitFor((f) => f.stream === 1 && (f.type === T.HEADERS || f.type === T.RST_STREAM));
  t.diagnostic(`cpu for one block: ${cpuMs(p.proc.pid) - before} ms`);
  assert.ok(answer, 'the stream is answered');
  assert.equal(answer.type, T.RST_STREAM, `reset, not ${answer.type === T.HEADERS ? status(answer.payload) : '?'} after decoding it all`);
  assert.equal(origin.seen.length, 0);
  // the table stays in step: the next block uses the same entry, within
  // the limit (one reference), and is served
  c.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 3, Buffer.concat([block([[':method', 'GET'], [':scheme', 'http'], [':authority', 'h2.test'], [':path', '/after']]), indexed(62)])));
  const ok = await c.waitFor(headersOn(3));
  assert.equal(status(ok.payload), 200);
  assert.equal(origin.seen.find((s) => s.url === '/after').headers['x-b'], 'a'.repeat(3000));
  // one and a half times the limit: still the 431 README promises
  c.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 5, Buffer.concat([block([[':method', 'GET'], [':scheme', 'http'], [':authority', 'h2.test'], [':path', '/x']]), indexed(62), indexed(62)])));
  const over = await c.waitFor(headersOn(5));
  assert.equal(status(over.payload), 431);
});

// The same through request trailers, which are dropped (h2-small.test.mjs)
// and were not counted at all: any size was decoded and checked.
test('finding 1: request trailers whose HPACK references expand them past h2.max_header_list reset the stream', async (t) => {
  const { p } = await setup(t, 'h2:\n  max_header_list: 4KiB\n');
  const c = await connect(p.port);
  t.after(() => c.close());
  c.send(request(1, { method: 'POST', path: '/tr', flags: F.END_HEADERS }));
  c.send(frame(T.DATA, 0, 1, Buffer.from('hello')));
  const entry = literalIndexed('x-t', 'a'.repeat(3000));
  const refs = Buffer.alloc(9 * 16384 - entry.length, indexed(62));
  c.send(headerFrames(1, Buffer.concat([entry, refs]), true));
  const answer = await c.waitFor((f) => f.stream === 1 && (f.type === T.RST_STREAM || (f.type === T.HEADERS && status(f.payload))));
  assert.ok(answer);
  assert.equal(answer.type, T.RST_STREAM, `reset, not ${answer.type === T.HEADERS ? status(answer.payload) : '?'}`);
  // trailers within the limit are still dropped and the request served
  c.send(request(3, { method: 'POST', path: '/tr2', flags: F.END_HEADERS }));
  c.send(frame(T.DATA, 0, 3, Buffer.from('hello')));
  c.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 3, indexed(62)));
  const ok = await c.waitFor(headersOn(3));
  assert.equal(status(ok.payload), 200);
});

// Finding 2: limits.request_line (414 over HTTP/1.1) did not hold over h2,
// where :method and :path become the origin's request line: a 60 KiB
// :path (within h2.max_header_list) went to the origin as a 60 KiB
// request line, and into a key. h2 now answers 414 past the same limit,
// counted as the line it becomes ("GET /... HTTP/1.1").
test('finding 2: :method and :path over limits.request_line get 414 over h2 as over HTTP/1.1; at the limit they are served', async (t) => {
  const { p, origin } = await setup(t, 'limits:\n  request_line: 1KiB\n');
  const line = (path) => `GET ${path} HTTP/1.1`.length;
  const pathOf = (n) => '/' + 'a'.repeat(n - line('/'));
  const c = await connect(p.port);
  t.after(() => c.close());
  c.send(request(1, { path: pathOf(1024) }));
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 200, 'exactly at the limit');
  c.send(request(3, { path: pathOf(1025) }));
  assert.equal(status((await c.waitFor(headersOn(3))).payload), 414, 'one byte over');
  // (a fresh connection: a second 414 would be an HPACK reference)
  const c2 = await connect(p.port);
  t.after(() => c2.close());
  c2.send(request(1, { method: 'G'.repeat(1025 - line('/x') + 3), path: '/x' }));
  assert.equal(status((await c2.waitFor(headersOn(1))).payload), 414, 'a long method counts too');
  assert.deepEqual(origin.seen.map((s) => s.url), [pathOf(1024)], 'only the one at the limit reached the origin');
  // as HTTP/1.1 says it
  assert.equal((await get(p.port, pathOf(1025))).status, 414);
});

// Finding 3: an expectation other than 100-continue (RFC 9110 §10.1.1)
// got 417 over HTTP/1.1 (README, "Errors") but over h2 the field was
// dropped and the request forwarded without it, as if met. Now 417 there
// too, before anything reaches the origin.
test('finding 3: expect other than 100-continue gets 417 over h2 as over HTTP/1.1', async (t) => {
  const { p, origin } = await setup(t);
  const c = await connect(p.port);
  t.after(() => c.close());
  c.send(request(1, { path: '/e', extra: [['expect', 'something-else']] }));
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 417);
  assert.equal(origin.seen.length, 0, 'not forwarded');
  c.send(request(3, { method: 'POST', path: '/e2', flags: F.END_HEADERS, extra: [['expect', '100-continue'], ['content-length', '2']] }));
  c.send(frame(T.DATA, F.END_STREAM, 3, Buffer.from('hi')));
  assert.ok(await c.waitFor((f) => f.type === T.HEADERS && f.stream === 3 && (f.flags & F.END_STREAM) === 0 && f.payload.length > 0));
  assert.ok(await c.waitFor((f) => f.type === T.DATA && f.stream === 3 && f.payload.toString() === 'ok POST /e2 2'));
  assert.equal((await get(p.port, '/e3', { headers: { expect: 'something-else' } })).status, 417, 'as HTTP/1.1 says it');
});

// Finding 4: RFC 9113 §8.2.3 lets a client split its cookie into crumbs
// (browsers do, for HPACK), which are one field once joined; each crumb
// counted against limits.header_count, so a browser with 120 cookies got
// 431 over h2 where the same cookies in one HTTP/1.1 line were served.
// The crumbs now count as the one field they become; other fields still
// count one each.
test('finding 4: cookie crumbs count as the one field they join into for limits.header_count', async (t) => {
  const { p, origin } = await setup(t);
  const c = await connect(p.port);
  t.after(() => c.close());
  const crumbs = Array.from({ length: 120 }, (_, i) => ['cookie', `k${i}=v`]);
  c.send(request(1, { path: '/crumbs', extra: crumbs }));
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 200);
  assert.equal(origin.seen.find((s) => s.url === '/crumbs').headers.cookie, crumbs.map(([, v]) => v).join('; '));
  // as HTTP/1.1, one line
  assert.equal((await get(p.port, '/crumbs-h1', { headers: { cookie: crumbs.map(([, v]) => v).join('; ') } })).status, 200);
  // 100 fields and the joined cookie: 101, over limits.header_count
  const c2 = await connect(p.port);
  t.after(() => c2.close());
  const fields = Array.from({ length: 100 }, (_, i) => [`x-f${i}`, 'v']);
  c2.send(request(1, { path: '/many', extra: [...fields, ...crumbs.slice(0, 3)] }));
  assert.equal(status((await c2.waitFor(headersOn(1))).payload), 431, 'the other fields still count');
  const c3 = await connect(p.port);
  t.after(() => c3.close());
  c3.send(request(1, { path: '/many2', extra: [...fields.slice(0, 99), ...crumbs.slice(0, 3)] }));
  assert.equal(status((await c3.waitFor(headersOn(1))).payload), 200, 'at the limit');
});

// Finding 5: limits.max_connections reserves two descriptors per client
// connection (README: itself and one origin connection), and so bounds
// what ulimit -n must hold. An h2 connection opened an origin connection
// per stream: h2.max_concurrent_streams (100) of them, held as long as the
// client kept its request bodies coming (or the origin was slow).
// Measured under ulimit -n 300 (max_connections 118): 3 h2 connections of
// 100 POST streams without DATA took 281 origin connections, the rest
// failed "connect failed: too many open files" (502), and an HTTP/1.1
// client then got ECONNRESET. Past the one its own slot reserves, each
// origin connection an h2 stream opens now takes a slot of
// limits.max_connections until it closes; past the limit the stream gets
// 503, as a new connection does.
test('finding 5: origin connections opened for h2 streams take limits.max_connections slots; past it, 503 on the stream', async (t) => {
  // holds every request unanswered, but GET /after
  const held = [];
  const origin = await startRawOrigin((s) => {
    held.push(s);
    s.on('data', (d) => { if (d.toString().startsWith('GET /after')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'); });
  });
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', tmpFile('h2-round5-fds.yaml', 'limits:\n  max_connections: 4\n')]);
  t.after(async () => { const r = await p.stop(); await origin.close(); assert.equal(r.code, 0); });
  const c = await connect(p.port);
  for (let i = 0; i < 20; i++) c.send(request(2 * i + 1, { method: 'POST', path: `/u${i}`, flags: F.END_HEADERS }));
  // the client's own slot and the origin connection it reserves, then
  // three origin connections of a slot each; 16 streams refused
  const answered = [];
  for (let i = 0; i < 20 && answered.length < 16; i++) {
    const h = await c.waitFor((f) => f.type === T.HEADERS && !answered.includes(f.stream) && f.stream > 0, 10000);
    assert.ok(h, `${answered.length} streams answered 503, ${held.length} origin connections`);
    answered.push(h.stream);
  }
  assert.equal(status(c.frames.find((f) => f.type === T.HEADERS).payload), 503);
  for (let i = 0; i < 500 && held.length < 4; i++) await sleep(10);
  assert.equal(held.length, 4, 'four origin connections: the reserved one and the 3 slots limits.max_connections 4 leaves');
  // every slot held: a new client connection is refused as well
  assert.equal((await get(p.port, '/after')).status, 503);
  // the client leaves: its origin connections close and give their slots back
  const gone = held.map((s) => new Promise((r) => s.once('close', r)));
  c.close();
  await Promise.all(gone);
  let r;
  for (let i = 0; i < 50 && (r = await get(p.port, '/after')).status === 503; i++) await sleep(20);
  assert.equal(r.status, 200, 'served once the slots are back');
});

// Finding 6: a request the HTTP/1 front refuses leaves an error-log line
// (README, "Errors": `client <ip>: 400 Bad Request: missing Host`); one
// the h2 mapping refused (400, 414, 417, 431, 501, 415, or malformed:
// RST_STREAM) left no line at all, so probing over h2 went unseen. Each
// now says which stream and why.
// The origin connection a client's own slot reserves is an h2 client's
// too: with limits.max_connections 1 an h2 client is served, one stream
// after another, and again on a new connection after it leaves.
test('finding 5: an h2 client has the origin connection its own slot reserves (limits.max_connections 1)', async (t) => {
  const { p } = await setup(t, 'limits:\n  max_connections: 1\n');
  for (const round of [1, 2]) {
    // the one slot may still be the last connection's (the port probe's,
    // the last round's) until its memory goes: a refused one is closed
    let c;
    for (let i = 0; i < 200; i++) {
      c = await connect(p.port);
      c.send(request(1, { path: `/r${round}-1` }));
      if (await c.waitFor(headersOn(1))) break;
      c.close();
      await sleep(10);
    }
    t.after(() => c.close());
    for (const id of [1, 3, 5]) {
      if (id > 1) c.send(request(id, { path: `/r${round}-${id}` }));
      assert.ok(await c.waitFor((f) => f.type === T.DATA && f.stream === id && (f.flags & F.END_STREAM)), `round ${round} stream ${id}`);
      assert.equal(Buffer.concat(c.frames.filter((f) => f.type === T.DATA && f.stream === id).map((f) => f.payload)).toString(), `ok GET /r${round}-${id} 0`);
    }
    c.close();
  }
});

// Left from finding 5: the slots bound descriptors, not who holds them.
// One h2 connection may hold h2.max_concurrent_streams origin connections,
// so limits.max_connections / 100 clients that keep bodies pending (or
// ask a slow origin) fill it, where HTTP/1.1 clients need as many
// connections as the limit; everyone else then gets 503. A per-connection
// share (streams past it waiting for an origin connection, not refused)
// is a design change left for later.
test('finding 5, left: one h2 connection does not take every slot of limits.max_connections from other clients', { todo: 'a per-connection share of origin connections, with a queue past it' }, async (t) => {
  const origin = await startRawOrigin((s) => s.on('data', (d) => {
    if (d.toString().startsWith('GET')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
  }));
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', tmpFile('h2-round5-share.yaml', 'limits:\n  max_connections: 10\n')]);
  t.after(async () => { await p.stop(); await origin.close(); });
  const c = await connect(p.port);
  t.after(() => c.close());
  for (let i = 0; i < 20; i++) c.send(request(2 * i + 1, { method: 'POST', path: `/hold${i}`, flags: F.END_HEADERS }));
  // 10 streams answered 503 (1 + 9 slots hold the other 10)
  for (let n = 0, seen = new Set(); n < 10; n++) {
    const h = await c.waitFor((f) => f.type === T.HEADERS && !seen.has(f.stream));
    assert.ok(h);
    seen.add(h.stream);
  }
  assert.equal((await get(p.port, '/other-client')).status, 200, 'another client is served');
});

// The error-log lines matching re, once there are `want` of them (stderr
// may come after the frames that answered), or what there is at the end.
async function logLines(p, re, want) {
  let lines = [];
  for (let i = 0; i < 200; i++) {
    lines = p.errors().split('\n').filter((l) => re.test(l));
    if (lines.length >= want) break;
    await sleep(10);
  }
  return lines;
}

test('finding 6: an h2 request refused at mapping leaves an error-log line with the client, the stream and why', async (t) => {
  const { p, origin } = await setup(t);
  const c = await connect(p.port);
  t.after(() => c.close());
  c.send(request(1, { path: '/x', extra: [['host', 'other.test']] }));
  assert.equal(status((await c.waitFor(headersOn(1))).payload), 400);
  c.send(request(3, { path: '/x', extra: [['expect', 'nope']] }));
  assert.ok(await c.waitFor(headersOn(3)));
  c.send(request(5, { path: '/x', extra: [['x-a', 'b'], ['x-a', 'c'], [':method', 'GET']] }));
  assert.ok(await c.waitFor(rstOn(5)));
  assert.equal(origin.seen.length, 0);
  const log = (await logLines(p, /h2 stream \d+: 4\d\d /, 2)).join('\n');
  assert.match(log, /client 127\.0\.0\.1: h2 stream 1: 400 Bad Request: host differs from :authority/);
  assert.match(log, /client 127\.0\.0\.1: h2 stream 3: 417 Expectation Failed: expect other than 100-continue/);
  // a connection that sends nothing else: ten lines, the tenth saying so
  const c2 = await connect(p.port);
  t.after(() => c2.close());
  for (let i = 0; i < 30; i++) c2.send(request(2 * i + 1, { path: '/x', extra: [['host', 'other.test']] }));
  assert.ok(await c2.waitFor(headersOn(59)));
  const lines = await logLines(p, /h2 stream \d+: 400 Bad Request/, 11);
  assert.equal(lines.length, 1 + 10);
  assert.match(lines[10], /h2 stream 19: .*further refusals on this connection not logged/);
});
