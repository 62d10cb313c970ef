// Memory per h2 connection (issue 15): h2.max_output_buffer is shared out
// among a connection's streams, each queuing at most its share of relayed
// response body. A client that keeps its flow-control windows shut
// (SETTINGS_INITIAL_WINDOW_SIZE 0, RFC 9113 §6.9.2) while 100 streams
// fetch large uncached bodies makes idemcache hold about the budget, not
// 100 times what one HTTP/1 client may; a stalled stream fills its own
// share only, so the others on the connection flow, and it completes once
// its window opens. Raw frames (h2-frames.mjs) give per-stream window control.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startProxy, startOrigin, tmpFile, sleep, SANITIZED, proxyInFront } from './lib.mjs';
import { T, F, frame, u32, request, connect, headersOn, status, goaway } from './h2-frames.mjs';

const MiB = 1024 * 1024;
const READ_CHUNK = 64 * 1024; // server.h: the largest upstream read
const READ_FLOOR = 4 * 1024; // pool.c: UPSTREAM_READ_FLOOR, the smallest
const SHARE_FLOOR = 16 * 1024; // h2_session.h: H2_SHARE_FLOOR
const MAX_WINDOW = 2 ** 31 - 1;

// One 10 MB body, every byte depending on its offset, so a byte out of
// place or missing shows.
const BIG = Buffer.alloc(10 * 1000 * 1000);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 31 + (i >>> 13)) & 0xff;

async function setup(t, yaml) {
  return proxyInFront(t, (req, res) => {
    res.setHeader('Cache-Control', 'no-store'); // uncached: relayed, never a hit
    res.setHeader('Content-Type', 'application/octet-stream');
    const size = req.url.startsWith('/tiny') ? 4096 : req.url.startsWith('/small') ? MiB : BIG.length;
    res.end(BIG.subarray(0, size));
  }, yaml, 'h2-memory.yaml');
}

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

// The highest RSS once it stops growing: sampled until 10 samples in a
// row add less than one read, or 200 samples (what is asserted is the
// memory, never the time).
async function settledRss(pid) {
  let max = rssBytes(pid);
  for (let i = 0, still = 0; i < 200 && still < 10; i++) {
    await sleep(100);
    const now = rssBytes(pid);
    still = now > max + READ_CHUNK ? 0 : still + 1;
    max = Math.max(max, now);
  }
  return max;
}

const windowUpdate = (stream, n) => frame(T.WINDOW_UPDATE, 0, stream, u32(n));

// DATA bytes received on a stream, and whether END_STREAM came.
function bodyOf(c, stream) {
  const parts = c.frames.filter((f) => f.type === T.DATA && f.stream === stream);
  return { body: Buffer.concat(parts.map((f) => f.payload)), ended: parts.some((f) => f.flags & F.END_STREAM) };
}

async function wholeBody(c, stream, want) {
  const end = await c.waitFor((f) => f.type === T.DATA && f.stream === stream && (f.flags & F.END_STREAM), 30000);
  assert.ok(end, `stream ${stream} ended`);
  const { body } = bodyOf(c, stream);
  assert.equal(body.length, want.length, `stream ${stream}: every byte`);
  assert.ok(body.equals(want), `stream ${stream}: the right bytes`);
}

test('h2.max_output_buffer: 100 streams of 10 MB uncached bodies behind shut windows hold about the budget, not 100 × 256 KiB', async (t) => {
  // the defaults: h2.max_concurrent_streams 100, h2.max_output_buffer 1MiB
  // (none written, so that a binary without the field runs it too)
  const streams = 100;
  const budget = MiB;
  const { p, origin } = await setup(t);
  const c = await connect(p.port, { settingsPairs: [[4, 0]] }); // SETTINGS_INITIAL_WINDOW_SIZE 0
  t.after(() => c.close());
  // a first exchange warms the worker up (its pools, nghttp2's tables)
  c.send(request(1, { path: '/tiny/warm' }));
  c.send(windowUpdate(0, MAX_WINDOW - 65535));
  c.send(windowUpdate(1, MAX_WINDOW));
  await wholeBody(c, 1, BIG.subarray(0, 4096));
  const before = await settledRss(p.proc.pid);
  const ids = [];
  for (let i = 0; i < streams; i++) {
    ids.push(3 + 2 * i);
    c.send(request(3 + 2 * i, { path: `/big/${i}` }));
  }
  for (const id of ids) assert.ok(await c.waitFor(headersOn(id), 30000), `stream ${id} answered`);
  for (let i = 0; i < 600 && origin.seen.length < streams + 1; i++) await sleep(50);
  assert.equal(origin.seen.length, streams + 1, 'every stream reached the origin');
  const after = await settledRss(p.proc.pid);
  const grew = after - before;
  // Each stream queues up to its share (budget / streams, at least the
  // floor), plus at most the smallest read: the origin is read in what
  // the stream has room for (pool.c read_size), not in READ_CHUNKs,
  // which held about 6.7 MiB here; 4 KiB each and 2 MiB for the
  // exchanges, their origin connections and the allocator's slack.
  const share = Math.max(SHARE_FLOOR, Math.floor(budget / streams));
  const bound = streams * (share + READ_FLOOR + 4096) + 2 * MiB;
  t.diagnostic(`RSS ${(before / MiB).toFixed(1)} MiB -> ${(after / MiB).toFixed(1)} MiB: +${(grew / MiB).toFixed(1)} MiB for ${streams} stalled streams (bound ${(bound / MiB).toFixed(1)} MiB)`);
  assert.equal(c.frames.find(goaway), undefined, 'the connection stays up');
  assert.equal(bodyOf(c, 3).body.length, 0, 'a shut window: no DATA');
  if (!SANITIZED) // ASan's quarantine and shadow memory make RSS no measure
    assert.ok(grew < bound, `RSS grew ${grew} bytes, over ${bound}`);
});

test('h2.max_output_buffer: a stream stalled at window 0 blocks no other; once its window opens it completes with the right bytes', async (t) => {
  // a small budget, so a connection-wide mark would be spent by the
  // stalled stream alone
  const { p } = await setup(t, 'h2:\n  max_output_buffer: 64KiB\n');
  const c = await connect(p.port, { settingsPairs: [[4, 0]] });
  t.after(() => c.close());
  c.send(windowUpdate(0, MAX_WINDOW - 65535));
  c.send(request(1, { path: '/big/stalled' }));
  assert.ok(await c.waitFor(headersOn(1)), 'the stalled stream has its HEADERS');
  const others = [3, 5, 7];
  for (const id of others) {
    c.send(request(id, { path: `/small/${id}` }));
    c.send(windowUpdate(id, MAX_WINDOW));
  }
  for (const id of others) await wholeBody(c, id, BIG.subarray(0, MiB));
  assert.equal(bodyOf(c, 1).body.length, 0, 'the stalled stream got nothing meanwhile');
  assert.equal(status(c.frames.find(headersOn(1)).payload), 200);
  c.send(windowUpdate(1, MAX_WINDOW));
  await wholeBody(c, 1, BIG);
  assert.equal(c.frames.find(goaway), undefined, 'the connection stays up');
});

test('a client that opens its windows wide and only reads gets whole bodies (a flush the socket took at once left DATA waiting)', async (t) => {
  const { p } = await setup(t);
  const c = await connect(p.port);
  t.after(() => c.close());
  // no WINDOW_UPDATE will follow these: the client sends nothing more,
  // so no read of ours can restart a flush
  c.send(windowUpdate(0, MAX_WINDOW - 65535));
  for (const id of [1, 3]) c.send(request(id, { path: `/small/${id}` }));
  for (const id of [1, 3]) c.send(windowUpdate(id, MAX_WINDOW - 65535));
  for (const id of [1, 3]) await wholeBody(c, id, BIG.subarray(0, MiB));
});
