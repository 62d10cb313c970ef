// Issue 15 follow-ups on the HTTP/1 and origin side (attack round 3's
// leftovers): transfer codings we do not decode, a malformed first chunk,
// the body timer while the origin holds us, the send timer after a hit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startProxy, startOrigin, startRawOrigin, tmpFile, sleep, parseResponses, rawExchange } from './lib.mjs';

// Everything a connection sends until it closes.
function getAll(port, bytes) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    const got = [];
    s.on('data', (d) => got.push(d));
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('error', reject);
  });
}

// An origin that answers every request on its connection with `wire`.
async function rawAnswer(wire) {
  return startRawOrigin((s) => {
    let head = '';
    s.on('data', (d) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) { head = ''; s.write(wire); }
    });
  });
}

test('an origin response with Transfer-Encoding: gzip, chunked is a 502, not de-chunked and stored without its coding', async (t) => {
  const origin = await rawAnswer('HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  for (let i = 0; i < 2; i++) { // the second would be a hit had the first been stored
    const r = parseResponses(await getAll(proxy.port, 'GET /gz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
    assert.equal(r.length, 1);
    assert.equal(r[0].status, 502);
    assert.notEqual(r[0].body.toString(), 'hello');
  }
});

test('an origin response with a transfer coding but no chunked (Transfer-Encoding: gzip) is a 502', async (t) => {
  const origin = await startRawOrigin((s) => {
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot-really-gzip'));
  });
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  const r = parseResponses(await getAll(proxy.port, 'GET /gz1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
  assert.equal(r[0].status, 502);
});

test('a request with a transfer coding other than chunked: 501 if chunked is last, 400 otherwise, never forwarded', async (t) => {
  let seen = 0;
  const origin = await startOrigin((req, res) => { seen++; res.end('ok'); });
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  const cases = [
    ['gzip, chunked', 501],
    ['gzip\r\nTransfer-Encoding: chunked', 501],
    ['chunked, gzip', 400],
    ['gzip', 400],
  ];
  for (const [te, want] of cases) {
    const r = parseResponses(await getAll(proxy.port, `POST /te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`));
    assert.equal(r[0].status, want, te);
  }
  assert.equal(seen, 0);
});

// The origin's head and a malformed first chunk in one packet: no byte of
// the response has gone out yet, so the client gets a 502, not a 200 head
// followed by a cut.
test('a head and a malformed first chunk in one packet from the origin give a 502, not a 200 then a cut', async (t) => {
  const origin = await rawAnswer('HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nhello\r\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  const raw = await getAll(proxy.port, 'GET /badchunk HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(raw.toString('latin1'), /^HTTP\/1\.1 502 /);
});

// While the origin does not take the request body (upstream backpressure,
// FRONT_FLOW_HOLD) we are the ones not reading the client: its
// client_body_idle timer must not run then, or a slow but steady upload
// ends in 408 (or a response cut mid-way) though the client never paused.
test('a request body the origin reads slowly but steadily is not cut at client_body_idle', async (t) => {
  const size = 16 * 1024 * 1024; // more than the socket buffers on the way hold
  const origin = await startRawOrigin((s) => {
    let got = 0;
    let headEnd = -1;
    let head = Buffer.alloc(0);
    let nextPause = 0;
    s.on('data', (d) => {
      if (headEnd < 0) {
        head = Buffer.concat([head, d]);
        headEnd = head.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        got = head.length - headEnd - 4;
      } else {
        got += d.length;
      }
      if (got >= size) {
        s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${String(got).length}\r\nConnection: close\r\n\r\n${got}`);
        return;
      }
      if (got >= nextPause) {
        // every 4 MiB a pause of three client_body_idle periods: the
        // buffers fill and idemcache holds the client's body meanwhile
        nextPause += 4 * 1024 * 1024;
        s.pause();
        setTimeout(() => s.resume(), 600);
      }
    });
  });
  const cfg = tmpFile('h1f.yaml', 'timeouts:\n  client_body_idle: 200ms\nlimits:\n  request_body: 64MiB\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  const wire = Buffer.concat([
    Buffer.from(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`),
    Buffer.alloc(size, 'b'),
  ]);
  const r = parseResponses(await getAll(proxy.port, wire));
  assert.equal(r.length, 1, proxy.errors());
  assert.equal(r[0].status, 200, `${r[0].status} ${r[0].body}`);
  assert.equal(r[0].body.toString(), String(size));
});

// A hit is written whole (one write of object references): the connection
// goes back to waiting for a request with the write still pending. A
// client that does not read it is timed by client_send_idle, not by
// keepalive_idle (75 s by default).
test('a large hit to a client that stops reading is closed at client_send_idle, not keepalive_idle', async (t) => {
  const size = 15 * 1024 * 1024;
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.setHeader('Content-Length', size);
    res.end(Buffer.alloc(size, 'h'));
  });
  const cfg = tmpFile('h1f.yaml', 'cache:\n  max_object_size: 16MiB\ntimeouts:\n  client_send_idle: 500ms\n  keepalive_idle: 60s\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  let s;
  t.after(async () => { s?.destroy(); await proxy.stop(); await origin.close(); });
  const stored = await getAll(proxy.port, 'GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(stored.toString('latin1', 0, 400), /stored/);
  s = net.connect(proxy.port, '127.0.0.1');
  let got = 0;
  s.on('data', (d) => { got += d.length; });
  const closed = new Promise((r) => { s.on('close', () => r('closed')); s.on('error', () => {}); });
  await new Promise((r) => s.on('connect', r));
  s.pause();
  s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n'); // keep-alive: only a timer closes it
  await sleep(3000); // six times client_send_idle
  s.resume();
  let timer;
  const how = await Promise.race([closed, new Promise((r) => { timer = setTimeout(() => r('still open'), 15000); })]);
  clearTimeout(timer);
  assert.equal(how, 'closed', 'still open: the keep-alive timer ran instead of the send timer');
  assert.ok(got < size, `the whole hit (${got} bytes) went out to a client that did not read`);
});

// Round 3's finding 9 on h2: SIGTERM sends GOAWAY; a stream whose large
// hit is still queued toward a slow reader finishes within timeouts.drain.
test('h2 drain: a large hit still going out to a slow reader finishes after SIGTERM', async (t) => {
  const http2 = await import('node:http2');
  const size = 15 * 1024 * 1024;
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.setHeader('Content-Length', size);
    res.end(Buffer.alloc(size, 'h'));
  });
  const cfg = tmpFile('h1f.yaml', 'cache:\n  max_object_size: 16MiB\ntimeouts:\n  drain: 30s\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  let session;
  t.after(async () => { session?.destroy(); await proxy.stop(); await origin.close(); });
  const stored = await getAll(proxy.port, 'GET /big2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(stored.toString('latin1', 0, 400), /stored/);
  session = http2.connect(`http://127.0.0.1:${proxy.port}`);
  session.on('error', () => {});
  const req = session.request({ ':path': '/big2', ':authority': 'a' });
  req.on('error', () => {});
  let got = 0;
  const status = await new Promise((r) => req.on('response', (h) => r(h[':status'])));
  assert.equal(status, 200);
  req.pause();
  const ended = new Promise((r) => { req.on('end', () => r('end')); req.on('close', () => r('close')); });
  await sleep(300);
  proxy.proc.kill('SIGTERM');
  await sleep(500);
  req.on('data', (d) => { got += d.length; });
  req.resume();
  await ended;
  assert.equal(got, size, 'the stream was cut at SIGTERM');
});
