// The memory store holds what it says (issue 12, part 1): small objects at
// their size, `stored` only for what was kept, the capacity in /stats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { BIN, startProxy, startOrigin, get, freePort, tmpFile } from './lib.mjs';

// routes: path -> (count) => { headers, body }; the origin counts requests.
async function setup(t, routes, yaml) {
  const counts = {};
  const origin = await startOrigin((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    counts[p] = (counts[p] || 0) + 1;
    const route = routes[p] || routes['*'];
    const r = route ? route(counts[p], p) : { status: 404, body: 'nope' };
    res.statusCode = r.status || 200;
    for (const [k, v] of Object.entries(r.headers || {})) res.setHeader(k, v);
    if (r.chunks) {
      for (const c of r.chunks) res.write(c);
      res.end();
    } else {
      res.end(r.body ?? '');
    }
  });
  t.after(() => origin.close());
  const adminPort = await freePort();
  const cfg = tmpFile('c.yaml', yaml);
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${adminPort}`, '--config', cfg]);
  t.after(() => proxy.stop());
  return {
    proxy, counts,
    get: (path, opts) => get(proxy.port, path, opts),
    stats: async () => JSON.parse((await get(adminPort, '/stats')).body),
  };
}

const api = (extra = {}) => ({
  headers: { 'Content-Type': 'application/json', 'Cache-Control': 'max-age=3600', ETag: '"v1"', ...extra },
});

test('a 1 MiB cache stores small objects, and /stats says what they cost and what it holds', async (t) => {
  const s = await setup(t, { '*': (n, p) => ({ ...api(), body: JSON.stringify({ id: p, pad: 'x'.repeat(60) }) }) },
    'cache:\n  memory_size: 1MiB\n');
  for (let i = 1; i <= 200; i++) {
    const r = await s.get(`/items/${i}`);
    assert.match(r.headers['cache-status'], /; stored$/);
  }
  for (let i = 1; i <= 200; i++) {
    const r = await s.get(`/items/${i}`);
    assert.match(r.headers['cache-status'], /^idemcache; hit/, `/items/${i}`);
  }
  for (let i = 1; i <= 200; i++) assert.equal(s.counts[`/items/${i}`], 1);
  const st = await s.stats();
  assert.equal(st.objects, 200);
  assert.equal(st.capacity_bytes, 1 << 20);
  assert.equal(st.evictions, 0);
  // each object charged at what it costs: more than its bytes, far below a 64 KiB segment
  assert.ok(st.bytes > 200 * 200 && st.bytes < 200 * 1024, `bytes ${st.bytes}`);
});

test('an object larger than a shard says detail=too-large, not stored, before its head goes out', async (t) => {
  // 1 MiB over 16 shards: 64 KiB each. 65000 bytes pass max_object_size
  // (clamped to 65536) but not with their head and bookkeeping.
  const big = 'b'.repeat(65000), bigger = 'c'.repeat(100000);
  const s = await setup(t, {
    '/big': () => ({ ...api(), body: big }),
    '/bigger': () => ({ ...api(), body: bigger }),
    '/small': () => ({ ...api(), body: 'ok' }),
  }, 'cache:\n  memory_size: 1MiB\n  max_object_size: 8MiB\n');
  for (const [p, body] of [['/big', big], ['/bigger', bigger]]) {
    const a = await s.get(p);
    assert.equal(a.body.toString(), body);
    assert.doesNotMatch(a.headers['cache-status'], /stored/);
    assert.match(a.headers['cache-status'], /detail=too-large/);
    const b = await s.get(p);
    assert.equal(b.body.toString(), body);
    assert.doesNotMatch(b.headers['cache-status'], /hit/);
    assert.equal(s.counts[p], 2);
  }
  assert.match((await s.get('/small')).headers['cache-status'], /stored/);
  assert.match((await s.get('/small')).headers['cache-status'], /hit/);
  assert.match(s.proxy.errors(), /cache\.max_object_size: 8388608 bytes is more than one shard holds.*clamped to 65536/);
});

test('a body of unknown length larger than a shard streams whole and is not kept', async (t) => {
  const chunks = Array.from({ length: 20 }, (_, i) => String.fromCharCode(97 + i).repeat(5000));
  const s = await setup(t, { '/chunked': () => ({ ...api(), chunks }) }, 'cache:\n  memory_size: 1MiB\n');
  for (let i = 0; i < 2; i++) {
    const r = await s.get('/chunked');
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    assert.equal(r.body.toString(), chunks.join(''));
  }
  assert.equal(s.counts['/chunked'], 2);
  assert.equal((await s.stats()).objects, 0);
});

test('a small body of unknown length is stored and served whole', async (t) => {
  const chunks = ['{"a":', '1,"b":', '"two"}'];
  const s = await setup(t, { '/c': () => ({ ...api(), chunks }) }, 'cache:\n  memory_size: 1MiB\n');
  assert.match((await s.get('/c')).headers['cache-status'], /stored/);
  const r = await s.get('/c');
  assert.match(r.headers['cache-status'], /hit/);
  assert.equal(r.body.toString(), chunks.join(''));
  assert.equal(r.headers['content-length'], String(chunks.join('').length));
  const st = await s.stats();
  assert.ok(st.bytes < 1024, `bytes ${st.bytes}`);
});

test('a 200 with no freshness and no validator is not stored: nothing to gain', async (t) => {
  const s = await setup(t, {
    '/bare': () => ({ headers: { 'Content-Type': 'application/json' }, body: '{}' }),
    '/etag': () => ({ headers: { ETag: '"e1"' }, body: '{}' }),
    '/max0': () => ({ headers: { 'Cache-Control': 'max-age=0' }, body: '{}' }),
  }, 'cache:\n  memory_size: 1MiB\n');
  for (const p of ['/bare', '/max0']) {
    const a = await s.get(p);
    assert.doesNotMatch(a.headers['cache-status'], /stored/, p);
    assert.match(a.headers['cache-status'], /detail=no-freshness/, p);
    assert.equal(a.headers.etag, undefined, 'streamed through, not held for a generated ETag');
  }
  // a validator lets the next request revalidate: that one is kept
  assert.match((await s.get('/etag')).headers['cache-status'], /stored/);
  assert.equal((await s.stats()).objects, 1);
});

test('--check-config warns when max_object_size is more than a shard holds', () => {
  const small = tmpFile('c.yaml', 'cache:\n  memory_size: 1MiB\n');
  const r = spawnSync(BIN, ['--check-config', small], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stderr, /warning: .*: cache\.max_object_size: 8388608 bytes is more than one shard holds \(cache\.memory_size \/ 16 = 65536 bytes\): clamped to 65536/);
  const ok = tmpFile('c.yaml', 'listen: 127.0.0.1:8080\nupstream: http://127.0.0.1:9000\ncache:\n  memory_size: 1MiB\n  max_object_size: 64KiB\n');
  const r2 = spawnSync(BIN, ['--check-config', ok], { encoding: 'utf8' });
  assert.equal(r2.status, 0);
  assert.doesNotMatch(r2.stderr, /warning/);
});
