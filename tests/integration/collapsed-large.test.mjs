// Requests collapsed onto one fetch whose response, without Content-Length,
// outgrows cache.max_object_size: the fill is fed on unstored for them
// (cache_stage.c feeds_followers) up to cache.max_stream_buffer, so each
// gets the whole body; the object is not stored. No timing: the origin
// holds the body until every follower has its head.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { startProxy, startRawOrigin, tmpFile, dechunk } from './lib.mjs';

const TOTAL = 200 * 1024;
const BODY = Buffer.alloc(TOTAL);
for (let i = 0; i < TOTAL; i++) BODY[i] = 97 + (i * 7 + (i >> 10)) % 26;

// An origin that sends the head and 8 KiB, then the rest once released;
// chunked or close-delimited.
async function heldOrigin(chunked) {
  let release;
  const held = new Promise((r) => { release = r; });
  let fetches = 0;
  const origin = await startRawOrigin((s) => {
    s.once('data', async () => {
      fetches++;
      const piece = (b) => (chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]) : b);
      s.write(`HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n${chunked ? 'Transfer-Encoding: chunked' : 'Connection: close'}\r\n\r\n`);
      s.write(piece(BODY.subarray(0, 8192)));
      await held;
      for (let at = 8192; at < TOTAL && !s.destroyed; at += 8192) s.write(piece(BODY.subarray(at, at + 8192)));
      if (chunked) s.end('0\r\n\r\n');
      else s.end();
    });
  });
  return Object.assign(origin, { release: () => release(), fetches: () => fetches });
}

// A raw h1 client: `first` resolves with the first bytes, `all` with all
// of them once the proxy closes.
function h1Client(port, path) {
  const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`));
  const d = [];
  let first;
  const firstP = new Promise((r) => { first = r; });
  s.on('data', (x) => { d.push(x); first(); });
  s.on('error', () => {});
  const all = new Promise((r) => s.on('close', () => { first(); r(Buffer.concat(d)); }));
  return { first: firstP, all, socket: s };
}


// The body of an h1 answer, or null when it was cut off.
function h1Body(raw) {
  const at = raw.indexOf('\r\n\r\n');
  if (at < 0) return null;
  const head = raw.subarray(0, at).toString();
  assert.match(head, /^HTTP\/1\.1 200/);
  const rest = raw.subarray(at + 4);
  if (/\r\ntransfer-encoding: chunked/i.test(head)) return dechunk(rest);
  const cl = /\r\ncontent-length: (\d+)/i.exec(head);
  if (cl) return rest.length === Number(cl[1]) ? rest : null;
  return rest; // close-delimited: whole only if the proxy ended it cleanly
}

async function withProxy(t, chunked, yaml) {
  const origin = await heldOrigin(chunked);
  const cfg = tmpFile('collapsed-large.yaml', `cache:\n  max_object_size: 64KiB\n${yaml || ''}`);
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  return { origin, proxy };
}

for (const chunked of [true, false]) {
  const kind = chunked ? 'chunked' : 'close-delimited';
  test(`h1 requests collapsed onto a ${kind} fetch past max_object_size get the whole body, and it is not stored`, async (t) => {
    const { origin, proxy } = await withProxy(t, chunked);
    const leader = h1Client(proxy.port, '/big');
    await leader.first;
    const followers = [h1Client(proxy.port, '/big'), h1Client(proxy.port, '/big')];
    await Promise.all(followers.map((f) => f.first));
    origin.release();
    const raws = await Promise.all([leader.all, ...followers.map((f) => f.all)]);
    raws.forEach((raw, i) => {
      const body = h1Body(raw);
      assert.ok(body, `client ${i}: cut off`);
      assert.equal(body.length, TOTAL, `client ${i}`);
      assert.ok(body.equals(BODY), `client ${i}: bytes differ`);
    });
    for (const raw of raws.slice(1)) assert.match(raw.toString('latin1', 0, 2000), /cache-status: [^\r]*collapsed/i);
    assert.equal(origin.fetches(), 1, 'the followers were collapsed onto the leader\'s fetch');
    // not stored: the next request goes to the origin
    const again = h1Client(proxy.port, '/big');
    await again.first;
    origin.release();
    assert.ok(h1Body(await again.all).equals(BODY));
    assert.equal(origin.fetches(), 2, 'an object past max_object_size was stored');
  });
}

test('an h2 request collapsed onto a chunked fetch past max_object_size gets the whole body', async (t) => {
  const { origin, proxy } = await withProxy(t, true);
  const leader = h1Client(proxy.port, '/big2');
  await leader.first;
  const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
  t.after(() => session.destroy());
  session.on('error', () => {});
  const stream = session.request({ ':path': '/big2', ':authority': 'a' });
  const chunks = [];
  const headers = await new Promise((r) => stream.on('response', r));
  assert.equal(headers[':status'], 200);
  assert.match(headers['cache-status'], /collapsed/);
  stream.on('data', (d) => chunks.push(d));
  const ended = new Promise((resolve) => {
    stream.on('end', () => resolve('end'));
    stream.on('close', () => resolve(stream.rstCode ? `reset ${stream.rstCode}` : 'end'));
  });
  origin.release();
  assert.equal(await ended, 'end');
  const body = Buffer.concat(chunks);
  assert.equal(body.length, TOTAL);
  assert.ok(body.equals(BODY));
  assert.ok(h1Body(await leader.all).equals(BODY));
});

// cache.max_stream_buffer bounds the body held for followers: at the bound
// they get it all; one byte under, they are cut (the leader never is).
for (const [bound, whole] of [[TOTAL, true], [TOTAL - 1, false]]) {
  test(`cache.max_stream_buffer ${bound} with a ${TOTAL}-byte body: a follower ${whole ? 'gets it whole' : 'is cut off'}`, async (t) => {
    const { origin, proxy } = await withProxy(t, true, `  max_stream_buffer: ${bound}\n`);
    const leader = h1Client(proxy.port, '/b');
    await leader.first;
    const follower = h1Client(proxy.port, '/b');
    await follower.first;
    origin.release();
    assert.ok(h1Body(await leader.all).equals(BODY), 'the leader is never cut');
    const body = h1Body(await follower.all);
    if (whole) assert.ok(body && body.equals(BODY));
    else assert.equal(body, null, 'the follower got past cache.max_stream_buffer');
  });
}

// The leader's client leaves: its fetch goes on in the background for the
// follower, unstored, and ends when the body does.
test('a background fetch past max_object_size goes on for its followers', async (t) => {
  const { origin, proxy } = await withProxy(t, true);
  const leader = h1Client(proxy.port, '/bg');
  await leader.first;
  const follower = h1Client(proxy.port, '/bg');
  await follower.first;
  leader.socket.destroy();
  await leader.all;
  origin.release();
  const body = h1Body(await follower.all);
  assert.ok(body && body.equals(BODY), 'the follower was cut off');
  const again = h1Client(proxy.port, '/bg');
  await again.first;
  origin.release();
  assert.ok(h1Body(await again.all).equals(BODY));
  assert.equal(origin.fetches(), 2, 'stored, or the follower fetched itself');
});
