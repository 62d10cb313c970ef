// Attack round 3 on the HTTP/1 front after the server/ redesign, TLS on the
// listeners, the background refresh and the h1/h2 mapping. Each test is one
// finding's reproduction against the real binary; a finding left open is
// marked { todo } with its diagnosis in the report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import http2 from 'node:http2';
import { certsForTests, startTlsProxy } from './tls-lib.mjs';
import { startProxy, startOrigin, startRawOrigin, startRelay, tmpFile, sleep, parseResponses, rawExchange, dechunk } from './lib.mjs';

const C = certsForTests('attack-round3');

// Send `bytes` then half-close (shutdown(SHUT_WR)); everything read until
// the proxy closes.
function halfClosed(port, bytes) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(bytes));
    const got = [];
    s.on('data', (d) => got.push(d));
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('error', () => {});
  });
}

// Finding 1: a client that half-closes right behind its request (nc -N,
// shutdown(SHUT_WR)) is still answered while its request is on the way
// (h1_server.c on_eof keeps it: "half-close: still answer this request"),
// but not when the request waits parked behind another one's fetch of the
// same key: on_eof saw ex->state == EX_NONE and closed, the answer lost.
test('finding 1: a half-closed client whose request is parked behind another fetch still gets its answer', async (t) => {
  let release;
  const held = new Promise((r) => { release = r; });
  const origin = await startOrigin(async (req, res) => {
    await held;
    res.setHeader('Cache-Control', 'max-age=60');
    res.end('shared body');
  });
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  const req = 'GET /parked HTTP/1.1\r\nHost: a\r\n\r\n';
  const leader = halfClosed(proxy.port, req);
  while (origin.seen.length === 0) await sleep(10); // the leader's fetch is at the origin
  const waiter = halfClosed(proxy.port, req);
  await sleep(300); // the waiter parked, its FIN read
  release();
  const [a, b] = await Promise.all([leader, waiter]);
  const ra = parseResponses(a);
  const rb = parseResponses(b);
  assert.equal(ra.length, 1);
  assert.equal(ra[0].body.toString(), 'shared body');
  assert.equal(rb.length, 1, 'the parked, half-closed client got no answer');
  assert.equal(rb[0].status, 200);
  assert.equal(rb[0].body.toString(), 'shared body');
  assert.match(rb[0].headers['connection'] || '', /close/);
  assert.equal(origin.seen.length, 1);
});

// The TLS records a server sent (TLS 1.2: an alert's content type, 21, is
// visible on the wire; a close_notify is one).
function recordTypes(buf) {
  const types = [];
  for (let i = 0; i + 5 <= buf.length; i += 5 + buf.readUInt16BE(i + 3)) types.push(buf[i]);
  return types;
}

// Finding 2: a response broken off mid-way (the origin closes inside a
// chunked body) reaches an HTTP/1.0 client delimited by the close. Over TLS
// that close came with a close_notify, which says the data is complete
// (RFC 8446 §6.1; RFC 9112 §9.8: an incomplete close must not be taken
// for a whole response): the client took a truncated body for the whole.
test('finding 2: a response cut off by its origin is not ended with close_notify (TLS, HTTP/1.0 client)', async (t) => {
  const origin = await startRawOrigin((s) => {
    s.once('data', (d) => {
      s.write('HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      if (d.toString().startsWith('GET /whole')) s.write('0\r\n\r\n');
      else setTimeout(() => s.destroy(), 100);
    });
  });
  const proxy = await startTlsProxy(C, ['--upstream', `http://127.0.0.1:${origin.port}`]);
  const relay = await startRelay(proxy.tlsPort);
  t.after(async () => { await relay.close(); await proxy.stop(); await origin.close(); });
  // One request over TLS 1.2; the body read and the record types the
  // proxy sent.
  const one = async (req) => {
    relay.reset();
    const got = await new Promise((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: relay.port, servername: 'localhost',
        ca: fs.readFileSync(C.ca.cert), maxVersion: 'TLSv1.2' });
      const d = [];
      s.on('secureConnect', () => s.write(req));
      s.on('data', (x) => d.push(x));
      s.on('close', () => resolve(Buffer.concat(d).toString('latin1')));
      s.on('error', () => {});
    });
    await sleep(100);
    return { got, types: recordTypes(relay.bytes().down) };
  };
  const cut = await one('GET /cut HTTP/1.0\r\nHost: a\r\n\r\n');
  assert.match(cut.got, /^HTTP\/1\.1 200/);
  assert.ok(cut.got.endsWith('hello'), 'the body so far was relayed');
  assert.ok(cut.types.includes(23), 'application data was seen');
  assert.ok(!cut.types.includes(21), 'a close_notify (alert record) followed a truncated response');
  assert.match(proxy.errors(), /after response start; closing/);
  // a whole response, and an error of ours, still end with close_notify
  const whole = await one('GET /whole HTTP/1.0\r\nHost: a\r\n\r\n');
  assert.ok(whole.got.endsWith('hello'));
  assert.ok(whole.types.includes(21), 'a whole response ends with close_notify');
  const bad = await one('GET /bad HTTP/1.1\r\n\r\n');
  assert.match(bad.got, /^HTTP\/1\.1 400/);
  assert.ok(bad.types.includes(21), 'an error of ours ends with close_notify');
});

// Finding 3: timeouts.client_body_idle is "silence while reading a request
// body", and so it is for a body forwarded as it comes (each read re-arms
// it); a body read ahead to key it (a POST a rule caches, QUERY) armed it
// once, so a client sending steadily for longer than it got 408.
test('finding 3: a body read ahead to key it, arriving steadily, is not cut at client_body_idle', async (t) => {
  const origin = await startOrigin((req, res, body) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(`got ${body.length}`);
  });
  const cfg = tmpFile('r3.yaml', 'timeouts:\n  client_body_idle: 1s\nrules:\n  - path: "/q/*"\n    methods: [POST]\n    cache: true\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  const body = 'z'.repeat(60);
  const head = `POST /q/slow HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  const out = await new Promise((resolve) => {
    const s = net.connect(proxy.port, '127.0.0.1');
    const d = [];
    s.on('connect', async () => {
      s.write(head);
      // ten pieces 300 ms apart: never 1 s quiet, 3 s in all
      for (let i = 0; i < 10 && !s.destroyed; i++) {
        await sleep(300);
        s.write(body.slice(i * 6, i * 6 + 6));
      }
    });
    s.on('data', (x) => d.push(x));
    s.on('close', () => resolve(Buffer.concat(d)));
    s.on('error', () => {});
  });
  const [r] = parseResponses(out);
  assert.equal(r.status, 200, `got ${out.toString().split('\r\n')[0]}`);
  assert.equal(r.body.toString(), 'got 60');
  assert.match(r.headers['cache-status'], /stored/);
  // and one that goes quiet still gets its 408
  const { data, closed } = await rawExchange(proxy.port, `${head.replace('/q/slow', '/q/quiet')}${body.slice(0, 6)}`, { idleMs: 5000 });
  assert.ok(closed);
  assert.equal(parseResponses(data)[0].status, 408);
});


function getAll(port, req) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(req));
    const d = [];
    s.on('data', (x) => d.push(x));
    s.on('close', () => resolve(Buffer.concat(d)));
    s.on('error', () => {});
  });
}

// Finding 4: a cacheable response without Content-Length that outgrows
// cache.max_object_size while it streams is dropped from the store, as the
// README says; but the requests collapsed onto its fetch, streaming from
// the fill, are cut off there (cache_stage_body sets FILL_ABORTED: "its
// streamers cannot have the rest"), though the origin's response is whole
// and the leader gets all of it. Fixed: the fill is fed on unstored for
// them, up to cache.max_stream_buffer (collapsed-large.test.mjs).
test('finding 4: requests collapsed onto a chunked fetch that outgrows max_object_size get the whole body', async (t) => {
  const total = 200 * 1024;
  const origin = await startRawOrigin((s) => {
    s.once('data', async () => {
      s.write('HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = Buffer.alloc(8192, 'x');
      for (let sent = 0; sent < total && !s.destroyed; sent += chunk.length) {
        s.write(`${chunk.length.toString(16)}\r\n`);
        s.write(chunk);
        s.write('\r\n');
        await sleep(20);
      }
      s.write('0\r\n\r\n');
    });
  });
  const cfg = tmpFile('r3.yaml', 'cache:\n  max_object_size: 64KiB\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  const req = 'GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
  const leader = getAll(proxy.port, req);
  await sleep(100);
  const waiter = getAll(proxy.port, req);
  for (const [who, raw] of [['leader', await leader], ['waiter', await waiter]]) {
    const at = raw.indexOf('\r\n\r\n');
    assert.ok(at > 0, `${who}: no head`);
    assert.match(raw.subarray(0, at).toString(), /^HTTP\/1\.1 200/);
    const body = dechunk(raw.subarray(at + 4));
    assert.ok(body, `${who}: the body was cut off after ${raw.length - at - 4} bytes`);
    assert.equal(body.length, total, who);
  }
});

// Finding 5: limits.request_body refuses a chunked body as soon as it
// passes the limit when the body is forwarded; read ahead to key it (a
// POST a rule caches, QUERY), it was read on to body_key.max_bytes (1 MiB,
// held in memory, its framing to twice that) before the 413 came.
test('finding 5: a chunked body read ahead to key it gets 413 once past limits.request_body, not after body_key.max_bytes', async (t) => {
  const origin = await startOrigin((req, res, body) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(`got ${body.length}`);
  });
  const cfg = tmpFile('r3.yaml', 'limits:\n  request_body: 100\nrules:\n  - path: "/q/*"\n    methods: [POST]\n    cache: true\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  const head = (path) => `POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`;
  // at the limit: read ahead, keyed, stored
  const at = await rawExchange(proxy.port, `${head('/q/at')}64\r\n${'y'.repeat(100)}\r\n0\r\n\r\n`);
  assert.equal(parseResponses(at.data)[0].status, 200);
  assert.match(parseResponses(at.data)[0].headers['cache-status'], /stored/);
  // one byte past it, the rest of the body never sent: 413 at once
  const past = await rawExchange(proxy.port, `${head('/q/past')}65\r\n${'x'.repeat(101)}\r\n`, { idleMs: 3000 });
  assert.ok(past.data.length, 'no answer while the body is incomplete: it is still being read ahead');
  assert.equal(parseResponses(past.data)[0].status, 413);
  assert.ok(past.closed);
  assert.equal(origin.seen.length, 1, 'only the request at the limit reached the origin');
});

// Finding 6: TLS lets a client close its sending side and still read the
// answer (RFC 8446 §6.1: close_notify closes the write direction). A
// request with a body, then close_notify in the same read: tls_input hands
// over the plaintext (the pipeline holds the body until the origin is
// connected, reading paused), then reports the close, and on_eof in
// CS_BODY closed the connection with the whole body in the buffer: no
// answer. (In clear text a FIN is not read while reading is paused.)
test('finding 6: a TLS client that sends a request with a body and close_notify at once still gets its answer', async (t) => {
  const origin = await startOrigin((req, res, body) => res.end(`got ${body.length}`));
  const proxy = await startTlsProxy(C, ['--upstream', `http://127.0.0.1:${origin.port}`]);
  // A relay that gathers what the client sends for 50 ms before passing
  // it on, so that the request and the close_notify behind it arrive in
  // one read; half-open both ways, so the answer can still come back.
  const relay = net.createServer({ allowHalfOpen: true }, (a) => {
    const b = net.connect({ port: proxy.tlsPort, host: '127.0.0.1', allowHalfOpen: true });
    let held = [];
    let timer = null;
    a.on('data', (d) => {
      held.push(d);
      timer ||= setTimeout(() => { timer = null; b.write(Buffer.concat(held)); held = []; }, 50);
    });
    a.on('end', () => setTimeout(() => b.end(), 200));
    b.on('data', (d) => a.write(d));
    b.on('end', () => a.end());
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
  });
  await new Promise((r) => relay.listen(0, '127.0.0.1', r));
  t.after(async () => { relay.close(); await proxy.stop(); await origin.close(); });
  const ask = (req) => new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: relay.address().port, servername: 'localhost',
      ca: fs.readFileSync(C.ca.cert), allowHalfOpen: true });
    const d = [];
    s.on('secureConnect', () => s.end(req)); // the request, then close_notify
    s.on('data', (x) => d.push(x));
    s.on('close', () => resolve(Buffer.concat(d)));
    s.on('error', () => resolve(Buffer.concat(d)));
  });
  const got = await ask('POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello');
  const [r] = parseResponses(got);
  assert.ok(r, 'no answer: closed with the body in the buffer');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'got 5');
  assert.match(r.headers['connection'] || '', /close/);
  // a body cut short by the close is never complete: closed, nothing sent on
  const cut = await ask('POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\nhello');
  assert.equal(parseResponses(cut).filter((x) => x.status === 200).length, 0);
  assert.equal(origin.seen.length, 1);
});

// Finding 7 (a sanitizer report): a request body read ahead to key it that
// is empty without saying so up front (h1: chunked "0"; h2: no
// content-length, END_STREAM on an empty DATA) went to the origin "from
// memory" as outbuf_add(o, NULL, 0): memcpy from a null pointer, undefined
// behaviour; the UBSan build (halt_on_error) died on it.
test('finding 7: an empty body read ahead to key it (chunked, or h2 without content-length) is forwarded without undefined behaviour', async (t) => {
  const origin = await startOrigin((req, res, body) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(`got ${body.length}`);
  });
  const cfg = tmpFile('r3.yaml', 'rules:\n  - path: "/q/*"\n    methods: [POST]\n    cache: true\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(async () => { await origin.close(); });
  const h1 = await rawExchange(proxy.port, 'POST /q/empty1 HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', { idleMs: 1000 });
  const [r1] = parseResponses(h1.data);
  assert.ok(r1, 'no answer to an empty chunked body');
  assert.equal(r1.status, 200);
  assert.equal(r1.body.toString(), 'got 0');
  const c = http2.connect(`http://127.0.0.1:${proxy.port}`);
  c.on('error', () => {});
  const r2 = await new Promise((resolve, reject) => {
    const st = c.request({ ':method': 'POST', ':path': '/q/empty2', ':authority': 'a', 'content-type': 'text/plain' }, { endStream: false });
    const d = [];
    let status;
    st.on('response', (h) => { status = h[':status']; });
    st.on('data', (x) => d.push(x));
    st.on('end', () => resolve({ status, body: Buffer.concat(d).toString() }));
    st.on('error', reject);
    st.end(); // an empty DATA with END_STREAM
  });
  c.close();
  assert.equal(r2.status, 200);
  assert.equal(r2.body, 'got 0');
  assert.equal(proxy.proc.exitCode, null, 'idemcache died');
  await proxy.stop(); // throws on a sanitizer report
});

const rssKiB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

// Finding 8: a client that pipelines requests answered from the store and
// reads nothing: each hit is queued toward it (a write request, the
// framing buffer, the object referenced), and nothing stopped reading the
// next request, so 27 MiB of pipelined GETs held 1.2 GiB in the proxy in
// 8 s, from one connection. h2 stops reading past WRITE_HIGH_WATER of
// answers waiting; h1 now waits the same way for its answers to drain.
test('finding 8: pipelined hits to a client that reads nothing stop being read, not queued without bound', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.end('x'.repeat(100));
  });
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const s = net.connect(proxy.port, '127.0.0.1');
  t.after(async () => { s.destroy(); await proxy.stop(); await origin.close(); });
  s.on('error', () => {});
  await new Promise((r) => s.on('connect', r));
  s.write('GET /o HTTP/1.1\r\nHost: a\r\n\r\n'); // stored
  const first = await new Promise((r) => s.once('data', r));
  assert.match(first.toString(), /stored/);
  s.pause(); // reads nothing from here
  const before = rssKiB(proxy.proc.pid);
  const n = 100000;
  s.write(Buffer.from('GET /o HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(n)));
  await sleep(3000);
  const grown = rssKiB(proxy.proc.pid) - before;
  assert.ok(grown < 64 * 1024, `the proxy grew by ${grown} KiB for answers nobody reads`);
  // read now: every answer comes, in order
  let got = 0;
  let tail = '';
  const marker = 'HTTP/1.1 200 OK';
  await new Promise((resolve) => {
    s.on('data', (d) => {
      const text = tail + d.toString('latin1');
      for (let i = text.indexOf(marker); i >= 0; i = text.indexOf(marker, i + 1)) got++;
      tail = text.slice(-(marker.length - 1));
      if (got >= n) resolve();
    });
    s.resume();
  });
  assert.equal(got, n);
});

test('finding 8: a client that pipelines hits and never reads them is closed at timeouts.client_send_idle', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.end('x'.repeat(100));
  });
  const cfg = tmpFile('r3.yaml', 'timeouts:\n  client_send_idle: 500ms\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  const s = net.connect(proxy.port, '127.0.0.1');
  t.after(async () => { s.destroy(); await proxy.stop(); await origin.close(); });
  const gone = new Promise((r) => { s.on('error', () => r('error')); s.on('close', () => r('close')); });
  await new Promise((r) => s.on('connect', r));
  s.write('GET /o HTTP/1.1\r\nHost: a\r\n\r\n');
  await new Promise((r) => s.once('data', r));
  s.pause();
  s.write(Buffer.from('GET /o HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(100000)));
  await sleep(2500);
  // closed by now: what we send next finds no one (the kernel resets it)
  const probe = setInterval(() => { if (!s.destroyed) s.write('GET /o HTTP/1.1\r\nHost: a\r\n\r\n'); }, 100);
  const how = await Promise.race([gone, sleep(5000).then(() => 'still open')]);
  clearInterval(probe);
  assert.ok(how === 'error' || how === 'close', how);
});

// Finding 9: SIGTERM lets requests in flight finish (timeouts.drain), and
// closes idle connections at once. A hit written in one go leaves its
// connection waiting for the next request (CS_HEAD, nothing buffered)
// while the stored body is still queued toward a slow reader: the drain
// took it for idle and closed it, the download cut at once.
test('finding 9: a large hit still going out to a slow reader finishes during the drain, not cut at SIGTERM', async (t) => {
  const size = 15 * 1024 * 1024; // more than the socket buffers on the way hold
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.setHeader('Content-Length', size);
    res.end(Buffer.alloc(size, 'h'));
  });
  const cfg = tmpFile('r3.yaml', 'cache:\n  max_object_size: 16MiB\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  const stored = await getAll(proxy.port, 'GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(stored.toString('latin1', 0, 400), /stored/);
  const s = net.connect(proxy.port, '127.0.0.1');
  const got = [];
  s.on('data', (d) => got.push(d));
  const closed = new Promise((r) => { s.on('close', r); s.on('error', () => {}); });
  await new Promise((r) => s.on('connect', r));
  s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
  s.pause(); // a slow reader: most of the hit waits in the proxy
  await sleep(300);
  proxy.proc.kill('SIGTERM');
  await sleep(300);
  s.resume();
  await closed;
  const raw = Buffer.concat(got);
  const at = raw.indexOf('\r\n\r\n');
  assert.match(raw.subarray(0, at).toString(), /hit/);
  assert.equal(raw.length - at - 4, size, 'the hit was cut by the drain');
  assert.equal((await proxy.exited).code, 0);
});
