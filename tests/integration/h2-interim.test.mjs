// Interim (1xx) responses over h2 (issue 15). RFC 9113 §8.1: a 1xx is a
// HEADERS frame without END_STREAM, before the final response's HEADERS.
// RFC 9110 §10.1.1: a client that sends `expect: 100-continue` may wait for
// a 100 before it sends the body; idemcache must not leave it waiting.
// Origins stay HTTP/1.1 and may send 1xx of their own (§15.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startProxy, startOrigin } from './lib.mjs';

function connect(url) {
  return new Promise((resolve, reject) => {
    const s = http2.connect(url);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

// One request; resolves { interim: [headers...], status, headers, body }.
// With waitContinue, the body is sent only after a 100 came (as a client
// honouring its own `expect: 100-continue` does).
function h2request(session, headers, { body, waitContinue = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    const interim = [];
    const chunks = [];
    let head;
    req.on('headers', (h) => interim.push(h));
    req.on('continue', () => { if (waitContinue) req.end(body); });
    req.on('response', (h) => { head = h; });
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve({ interim, status: head && head[':status'], headers: head, body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
    if (body !== undefined && !waitContinue) req.end(body);
  });
}

test('h2: an origin\'s 103 Early Hints reaches an h2 client as HEADERS before the final response, which is cached', async (t) => {
  let hits = 0;
  const origin = await startOrigin((req, res) => {
    hits++;
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
    res.setHeader('Cache-Control', 'max-age=600');
    res.end(`final #${hits}`);
  });
  t.after(() => origin.close());
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(() => proxy.stop());
  const s = await connect(`http://127.0.0.1:${proxy.port}`);
  t.after(() => s.close());

  const first = await h2request(s, { ':path': '/hinted' });
  assert.equal(first.status, 200);
  assert.equal(first.body, 'final #1');
  assert.equal(first.interim.length, 1, 'one informational HEADERS');
  assert.equal(first.interim[0][':status'], 103);
  assert.equal(first.interim[0].link, '</style.css>; rel=preload; as=style');

  const second = await h2request(s, { ':path': '/hinted' });
  assert.equal(second.status, 200);
  assert.equal(second.body, 'final #1', 'the final response was stored, not the 103');
  assert.match(String(second.headers['cache-status']), /hit/);
  assert.equal(hits, 1);
});

test('h2: a 100 Continue the origin chose to send, then 103, then the final response: the client sees 1xx then 200', async (t) => {
  const origin = await startOrigin((req, res) => {
    res.writeContinue();
    res.writeEarlyHints({ link: '</a.js>; rel=preload; as=script' });
    res.setHeader('Cache-Control', 'no-store');
    res.end('after interim');
  });
  t.after(() => origin.close());
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(() => proxy.stop());
  const s = await connect(`http://127.0.0.1:${proxy.port}`);
  t.after(() => s.close());

  const r = await h2request(s, { ':path': '/both' });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'after interim');
  const codes = r.interim.map((h) => h[':status']);
  assert.ok(codes.includes(103), `103 among the informational responses: ${codes}`);
  assert.ok(codes.every((c) => c >= 100 && c < 200), `only 1xx before the final: ${codes}`);
});

test('h2: a POST with expect: 100-continue whose client waits for the 100 gets a 100, then its response (no deadlock)', { timeout: 30000 }, async (t) => {
  const origin = await startOrigin((req, res, body) => {
    res.setHeader('Cache-Control', 'no-store');
    res.end(`got ${body.length}: ${body}`);
  });
  t.after(() => origin.close());
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(() => proxy.stop());
  const s = await connect(`http://127.0.0.1:${proxy.port}`);
  t.after(() => s.close());

  const r = await h2request(s, { ':method': 'POST', ':path': '/upload', expect: '100-continue', 'content-type': 'text/plain' },
    { body: 'hello body', waitContinue: true });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'got 10: hello body');
  assert.deepEqual(r.interim.map((h) => h[':status']), [100], 'exactly one 100, from idemcache');
});

// Cache security over h2 (RFC 9111 §5.2.2.7 private; a Set-Cookie without
// public is not shared, README "Cache-Status"): what one h2 client got is
// never served to another h2 client on its own connection.
test('h2: a Set-Cookie or Cache-Control: private response is not served to another h2 client', async (t) => {
  const counts = {};
  const origin = await startOrigin((req, res) => {
    counts[req.url] = (counts[req.url] || 0) + 1;
    const who = req.headers['x-user'] || 'nobody';
    if (req.url === '/private') res.setHeader('Cache-Control', 'private, max-age=600');
    else {
      res.setHeader('Cache-Control', 'max-age=600');
      if (req.url === '/cookie') res.setHeader('Set-Cookie', `session=${who}`);
    }
    res.end(`for ${who}`);
  });
  t.after(() => origin.close());
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(() => proxy.stop());
  const alice = await connect(`http://127.0.0.1:${proxy.port}`);
  t.after(() => alice.close());
  const bob = await connect(`http://127.0.0.1:${proxy.port}`);
  t.after(() => bob.close());

  for (const path of ['/private', '/cookie']) {
    const a = await h2request(alice, { ':path': path, 'x-user': 'alice' });
    assert.equal(a.body, 'for alice');
    // no Authorization (RFC 9111 §3.5) and no Vary: only private and
    // Set-Cookie keep alice's response from being stored for bob
    const b = await h2request(bob, { ':path': path });
    assert.equal(b.status, 200);
    assert.equal(b.body, 'for nobody', `${path}: bob never gets alice's body`);
    assert.ok(!String(b.headers['set-cookie'] || '').includes('alice'), `${path}: bob never gets alice's cookie`);
    assert.equal(counts[path], 2, `${path}: each went to the origin`);
  }
  // the control: the same response without private or Set-Cookie is shared,
  // so the checks above would see alice's entry if it were stored
  await h2request(alice, { ':path': '/shared', 'x-user': 'alice' });
  const b = await h2request(bob, { ':path': '/shared' });
  assert.equal(b.body, 'for alice');
  assert.equal(counts['/shared'], 1);
});
