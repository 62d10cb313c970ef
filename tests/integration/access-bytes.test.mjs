// The access log's bytes_in is what nginx's $request_length says: the bytes
// received from the client for the request, head and body as framed on the
// wire (issue 14, review leftover). The cases where the body is read ahead
// and the request does not simply stream it on: answered from the store,
// woken from parking behind another request's fetch, and on the reverse
// side a peer's reference expanded into its body (the wire carried only
// the reference).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startProxy, startOrigin, startRelay, rawExchange, parseResponses, get, sleep, tmpFile } from './lib.mjs';

const RULES = 'rules:\n  - { path: "/api/*", methods: [POST], cache: true }\n';

// The access log lines so far, waiting until there are `n`.
async function accessLines(proxy, n) {
  let log = proxy.access();
  for (let i = 0; i < 500 && log.length < n; i++) { await sleep(10); log = proxy.access(); }
  return log;
}

function post(path, body, { chunked = false } = {}) {
  if (!chunked) return `POST ${path} HTTP/1.1\r\nHost: origin.test\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const half = body.length >> 1;
  const chunk = (s) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;
  return `POST ${path} HTTP/1.1\r\nHost: origin.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(body.slice(0, half))}${chunk(body.slice(half))}0\r\n\r\n`;
}

test('bytes_in of a body-keyed POST answered from the store counts its body as framed on the wire', async () => {
  const origin = await startOrigin((req, res, body) => { res.setHeader('Cache-Control', 'max-age=60'); res.end(`answer to ${body.length} bytes`); });
  const proxy = await startProxy(['--config', tmpFile('bytes-rules.yaml', RULES), '--upstream', `http://127.0.0.1:${origin.port}`]);
  try {
    const body = JSON.stringify({ q: 'x'.repeat(3000) });
    const sent = [post('/api/q', body), post('/api/q', body), post('/api/q', body, { chunked: true })];
    for (const bytes of sent) {
      const { data } = await rawExchange(proxy.port, bytes, { idleMs: 300 });
      assert.equal(parseResponses(data)[0].status, 200);
    }
    const log = await accessLines(proxy, 3);
    assert.equal(origin.seen.length, 1, 'the second and third were hits');
    log.forEach((l, i) => assert.equal(l.bytes_in, Buffer.byteLength(sent[i]), `request ${i}: head and body as received`));
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

test('bytes_in of a body-keyed POST woken from parking counts the body it read ahead', async () => {
  let release;
  const held = new Promise((r) => { release = r; });
  const origin = await startOrigin(async (req, res, body) => {
    await held; // the first fetch stays in flight while the second parks behind it
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(`answer to ${body.length} bytes`);
  });
  const proxy = await startProxy(['--config', tmpFile('bytes-rules.yaml', RULES), '--upstream', `http://127.0.0.1:${origin.port}`]);
  try {
    const body = JSON.stringify({ q: 'y'.repeat(3000) });
    const bytes = [post('/api/p', body), post('/api/p', body, { chunked: true })];
    const first = rawExchange(proxy.port, bytes[0], { idleMs: 500 });
    for (let i = 0; i < 500 && origin.seen.length < 1; i++) await sleep(10);
    const second = rawExchange(proxy.port, bytes[1], { idleMs: 500 });
    await sleep(200); // whether or not it parked by now, bytes_in is the same
    release();
    for (const r of await Promise.all([first, second])) assert.equal(parseResponses(r.data)[0].status, 200);
    assert.equal(origin.seen.length, 1, 'one fetch for both');
    const log = await accessLines(proxy, 2);
    assert.equal(log.length, 2);
    const want = new Set(bytes.map((b) => Buffer.byteLength(b)));
    assert.deepEqual(new Set(log.map((l) => l.bytes_in)), want, 'each request\'s head and body as received');
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

test('bytes_in of a peer reference expanded on the reverse side is the reference as received, not the body it stands for', async () => {
  const SECRET = tmpFile('bytes-peer.secret', 'a-long-shared-secret-for-the-tests\n');
  const origin = await startOrigin((req, res, body) => { res.setHeader('Cache-Control', 'no-store'); res.end(`got ${body.length}`); });
  const reverse = await startProxy(['--config', tmpFile('bytes-reverse.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`),
    '--upstream', `http://127.0.0.1:${origin.port}`]);
  const link = await startRelay(reverse.port);
  const forward = await startProxy(['--mode', 'forward', '--config', tmpFile('bytes-forward.yaml', RULES),
    '--peer', `http://127.0.0.1:${link.port}`, '--peer-id', 'edge-1', '--peer-secret', SECRET]);
  try {
    const body = JSON.stringify({ q: 'z'.repeat(4000) });
    const send = () => get(forward.port, 'http://origin.test/api/r', { method: 'POST', body, headers: { 'Content-Type': 'application/json', 'Content-Length': body.length } });
    assert.equal((await send()).body.toString(), `got ${body.length}`);
    link.reset();
    assert.equal((await send()).body.toString(), `got ${body.length}`, 'the origin got the body whole');
    const up = link.bytes().up.toString('latin1');
    assert.match(up, /\r\nContent-Encoding: idem-ref\r\n/, 'the second went up as a reference');
    const log = await accessLines(reverse, 2);
    assert.equal(log[1].bytes_in, link.counts.up, 'the bytes the reverse side received for it');
    assert.ok(log[1].bytes_in < body.length, 'not the expanded body');
    assert.ok(log[0].bytes_in > body.length, 'the first carried its body');
  } finally {
    await forward.stop();
    await reverse.stop();
    await link.close();
    await origin.close();
  }
});
