// RFC 9111 round 2 (issue 13): Age from upstream, targeted cache control
// (RFC 9213), the generated ETag on the first response, Range from the cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, get, tmpFile } from './lib.mjs';

// routes: path -> (req, count) => { status, headers, body }. Everything
// started here is stopped by t.after whatever the outcome.
async function setup(t, routes, extra = []) {
  const counts = {};
  const origin = await startOrigin(async (req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    counts[p] = (counts[p] || 0) + 1;
    const r = await (routes[p] || (() => ({ status: 404, headers: {}, body: 'nope' })))(req, counts[p]);
    res.statusCode = r.status || 200;
    for (const [k, v] of Object.entries(r.headers || {})) res.setHeader(k, v);
    if (r.chunked) res.write(r.body); // no Content-Length: node frames it chunked
    res.end(r.chunked ? undefined : (r.body ?? ''));
  });
  let proxy;
  t.after(async () => {
    if (proxy) {
      const r = await proxy.stop();
      assert.equal(r.code, 0);
    }
    await origin.close();
  });
  proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, ...extra]);
  return { proxy, origin, counts, get: (path, opts) => get(proxy.port, path, opts) };
}

const ttlOf = (r) => Number(/ttl=(-?\d+)/.exec(r.headers['cache-status'])?.[1]);

// ---- 1. Age (RFC 9111 §4.2.3, §5.1) ----

test('Age from the origin: Age 3600 with max-age=60 is stale on arrival', async (t) => {
  const s = await setup(t, {
    '/old': (req, n) => ({ headers: { 'Cache-Control': 'max-age=60', Age: '3600' }, body: `v${n}` }),
  });
  await s.get('/old');
  const b = await s.get('/old');
  assert.equal(s.counts['/old'], 2, 'a response older than its lifetime is never a hit');
  assert.equal(b.body.toString(), 'v2');
  assert.match(b.headers['cache-status'], /fwd=stale/);
});

test('Age from the origin: a hit and a 304 from the cache send the age the response already had', async (t) => {
  const s = await setup(t, {
    '/a': () => ({ headers: { 'Cache-Control': 'max-age=600', Age: '100', ETag: '"a1"' }, body: 'aged' }),
  });
  await s.get('/a');
  const hit = await s.get('/a');
  assert.equal(s.counts['/a'], 1);
  assert.match(hit.headers['cache-status'], /hit/);
  const age = Number(hit.headers.age);
  assert.ok(age >= 100 && age < 600, `Age ${hit.headers.age} includes the 100 it arrived with`);
  assert.ok(ttlOf(hit) <= 500, `ttl ${ttlOf(hit)} counts the received age`);
  const nm = await s.get('/a', { headers: { 'If-None-Match': '"a1"' } });
  assert.equal(nm.status, 304);
  assert.ok(Number(nm.headers.age) >= 100, `304 Age ${nm.headers.age}`);
});

test('Age values that are not delta-seconds are ignored; too large saturates and is stale', async (t) => {
  const bad = { '/neg': '-1', '/dec': '1.5', '/abc': 'abc', '/list': 'old, 0' };
  const routes = {};
  for (const [p, v] of Object.entries(bad))
    routes[p] = () => ({ headers: { 'Cache-Control': 'max-age=600', Age: v }, body: p });
  for (const v of ['2147483647', '2147483648', '2147483649'])
    routes[`/big${v}`] = (req, n) => ({ headers: { 'Cache-Control': 'max-age=2147483646', Age: v }, body: `${n}` });
  // two lines: the first counts
  routes['/lines'] = () => ({ headers: { 'Cache-Control': 'max-age=600', Age: ['200', '0'] }, body: 'l' });
  routes['/members'] = () => ({ headers: { 'Cache-Control': 'max-age=600', Age: '200, 0' }, body: 'm' });
  const s = await setup(t, routes);
  for (const p of Object.keys(bad)) {
    await s.get(p);
    const hit = await s.get(p);
    assert.equal(s.counts[p], 1, `${p}: ignored Age leaves it fresh`);
    assert.ok(Number(hit.headers.age) < 100, `${p}: Age ${hit.headers.age}`);
  }
  for (const v of ['2147483647', '2147483648', '2147483649']) {
    await s.get(`/big${v}`);
    await s.get(`/big${v}`);
    assert.equal(s.counts[`/big${v}`], 2, `Age ${v} makes it stale`);
  }
  for (const p of ['/lines', '/members']) {
    await s.get(p);
    const hit = await s.get(p);
    assert.equal(s.counts[p], 1);
    assert.ok(Number(hit.headers.age) >= 200, `${p}: the first value, Age ${hit.headers.age}`);
  }
});

test('Age on a stale response served under max-stale, and on a merged 304', async (t) => {
  const s = await setup(t, {
    '/s': () => ({ headers: { 'Cache-Control': 'max-age=60', Age: '1000', ETag: '"s1"' }, body: 'stale body' }),
    '/r': (req) => req.headers['if-none-match'] === '"r1"'
      ? { status: 304, headers: { 'Cache-Control': 'max-age=600', Age: '50', ETag: '"r1"' } }
      : { headers: { 'Cache-Control': 'max-age=0', ETag: '"r1"' }, body: 'r body' },
  });
  await s.get('/s');
  const st = await s.get('/s', { headers: { 'Cache-Control': 'max-stale=5000' } });
  assert.equal(s.counts['/s'], 1);
  assert.equal(st.body.toString(), 'stale body');
  assert.ok(Number(st.headers.age) >= 1000, `stale Age ${st.headers.age}`);
  await s.get('/r');
  const merged = await s.get('/r');
  assert.equal(s.counts['/r'], 2);
  assert.ok(Number(merged.headers.age) >= 50, `merged Age ${merged.headers.age}`);
  const hit = await s.get('/r');
  assert.equal(s.counts['/r'], 2);
  assert.ok(Number(hit.headers.age) >= 50, `hit after the 304: Age ${hit.headers.age}`);
});

// ---- 2. Targeted cache control (RFC 9213) ----

test('CDN-Cache-Control replaces Cache-Control and Expires for this cache, and is forwarded', async (t) => {
  const s = await setup(t, {
    // the browser may not keep it; this cache may, for 600 s
    '/cdn': (req, n) => ({ headers: { 'Cache-Control': 'no-store', 'CDN-Cache-Control': 'max-age=600' }, body: `c${n}` }),
    // Cache-Control would store it; the targeted field says no
    '/nocdn': (req, n) => ({ headers: { 'Cache-Control': 'max-age=600', 'CDN-Cache-Control': 'no-store' }, body: `n${n}` }),
    // Expires ignored too: max-age=0 in the targeted field wins
    '/exp': (req, n) => ({ headers: { Expires: new Date(Date.now() + 3600e3).toUTCString(), 'CDN-Cache-Control': 'max-age=0' }, body: `e${n}` }),
    // invalid (a trailing comma) or empty: ignored, Cache-Control applies
    '/bad': (req, n) => ({ headers: { 'Cache-Control': 'max-age=600', 'CDN-Cache-Control': 'no-store,' }, body: `b${n}` }),
    '/empty': (req, n) => ({ headers: { 'Cache-Control': 'max-age=600', 'CDN-Cache-Control': '' }, body: `m${n}` }),
    // not on the list: no effect, passed through
    '/other': (req, n) => ({ headers: { 'Cache-Control': 'max-age=600', 'Other-Cache-Control': 'no-store' }, body: `o${n}` }),
  });
  const miss = await s.get('/cdn');
  assert.equal(miss.headers['cdn-cache-control'], 'max-age=600', 'forwarded by default');
  assert.equal(miss.headers['cache-control'], 'no-store');
  const hit = await s.get('/cdn');
  assert.equal(s.counts['/cdn'], 1);
  assert.equal(hit.body.toString(), 'c1');
  assert.match(hit.headers['cache-status'], /; hit; ttl=(59\d|600)$/, 'ttl is the targeted lifetime');
  assert.equal(hit.headers['cdn-cache-control'], 'max-age=600');
  const n1 = await s.get('/nocdn');
  await s.get('/nocdn');
  assert.equal(s.counts['/nocdn'], 2);
  assert.match(n1.headers['cache-status'], /detail=no-store/);
  await s.get('/exp');
  await s.get('/exp');
  assert.equal(s.counts['/exp'], 2, 'Expires is ignored when a targeted field applies');
  for (const p of ['/bad', '/empty']) {
    await s.get(p);
    const h = await s.get(p);
    assert.equal(s.counts[p], 1, `${p}: Cache-Control applies`);
    assert.match(h.headers['cache-status'], /hit/);
  }
  await s.get('/other');
  const o = await s.get('/other');
  assert.equal(s.counts['/other'], 1);
  assert.equal(o.headers['other-cache-control'], 'no-store');
});

test('cache.targeted_fields: an operator field first; cache.strip_targeted removes the listed ones', async (t) => {
  const cfg = tmpFile('targeted.yaml',
    'cache:\n  targeted_fields: [Idemcache-Cache-Control, CDN-Cache-Control]\n  strip_targeted: true\n');
  const s = await setup(t, {
    // chunked: streamed on the miss, not held for a generated ETag
    '/ours': (req, n) => ({ headers: { 'Idemcache-Cache-Control': 'max-age=300', 'CDN-Cache-Control': 'no-store', 'Other-Cache-Control': 'x' }, body: `u${n}`, chunked: true }),
    '/cdnonly': (req, n) => ({ headers: { 'Idemcache-Cache-Control': 'max-age=(', 'CDN-Cache-Control': 'max-age=120', 'Cache-Control': 'no-store' }, body: `d${n}` }),
  }, ['--config', cfg]);
  const miss = await s.get('/ours');
  assert.equal(miss.headers['idemcache-cache-control'], undefined, 'stripped on the miss');
  assert.equal(miss.headers['cdn-cache-control'], undefined);
  assert.equal(miss.headers['other-cache-control'], 'x', 'a field not on the list passes');
  const hit = await s.get('/ours');
  assert.equal(s.counts['/ours'], 1, 'the first field on the list wins');
  assert.match(hit.headers['cache-status'], /; hit; ttl=(29\d|300)$/);
  assert.equal(hit.headers['idemcache-cache-control'], undefined, 'stripped on the hit');
  assert.equal(hit.headers['cdn-cache-control'], undefined);
  const m2 = await s.get('/cdnonly');
  assert.equal(m2.headers['cdn-cache-control'], undefined, 'stripped on a miss held for its tag');
  assert.match(m2.headers.etag || '', /^"i-/);
  const h2 = await s.get('/cdnonly');
  assert.equal(s.counts['/cdnonly'], 1, 'an invalid first field falls to the next');
  assert.match(h2.headers['cache-status'], /; hit; ttl=(11\d|120)$/);
});

// ---- 4. The generated ETag on the first response (seed 004) ----

test('a stored 200 without ETag carries its generated tag on the first response; that client revalidates to a 304', async (t) => {
  const body = 'the same bytes for everyone';
  const s = await setup(t, {
    '/tag': () => ({ headers: { 'Cache-Control': 'max-age=600', 'Content-Length': String(body.length) }, body }),
  });
  const first = await s.get('/tag');
  assert.match(first.headers.etag || '', /^"i-[A-Za-z0-9_-]+"$/, 'the first client gets a validator');
  assert.match(first.headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/);
  assert.equal(first.body.toString(), body);
  const hit = await s.get('/tag');
  assert.equal(hit.headers.etag, first.headers.etag, 'the same tag as hits carry');
  const again = await s.get('/tag', { headers: { 'If-None-Match': first.headers.etag } });
  assert.equal(again.status, 304);
  assert.equal(again.headers.etag, first.headers.etag);
  assert.equal(s.counts['/tag'], 1);
});

test('the first-response tag: coalesced waiters get the same head; large or chunked responses stream untagged', async (t) => {
  let release;
  const gate = new Promise((r) => { release = r; });
  const big = 'x'.repeat(4096);
  const cfg = tmpFile('hold.yaml', 'cache:\n  etag_hold_max: 1000\n');
  const s = await setup(t, {
    '/slow': async () => { await gate; return { headers: { 'Cache-Control': 'max-age=600', 'Content-Length': '4' }, body: 'slow' }; },
    '/big': () => ({ headers: { 'Cache-Control': 'max-age=600', 'Content-Length': String(big.length) }, body: big }),
    '/chunked': () => ({ headers: { 'Cache-Control': 'max-age=600' }, body: 'chunky', chunked: true }),
  }, ['--config', cfg]);
  const all = [s.get('/slow'), s.get('/slow'), s.get('/slow')];
  while (!s.counts['/slow']) await new Promise((r) => setTimeout(r, 20));
  release();
  const got = await Promise.all(all);
  assert.equal(s.counts['/slow'], 1, 'one fetch');
  for (const r of got) {
    assert.equal(r.body.toString(), 'slow');
    assert.equal(r.headers.etag, got[0].headers.etag);
  }
  assert.match(got[0].headers.etag || '', /^"i-/);
  const b1 = await s.get('/big');
  assert.equal(b1.headers.etag, undefined, 'over cache.etag_hold_max: streamed untagged');
  assert.equal(b1.body.length, big.length);
  const b2 = await s.get('/big');
  assert.match(b2.headers.etag || '', /^"i-/, 'the hit carries the tag');
  const c1 = await s.get('/chunked');
  assert.equal(c1.headers.etag, undefined, 'no Content-Length: streamed untagged');
  const c2 = await s.get('/chunked');
  assert.match(c2.headers.etag || '', /^"i-/);
});

// ---- 3. Range requests from the cache (RFC 9110 §14) ----

const ALPHA = 'abcdefghijklmnopqrstuvwxyz';

test('Range from the cache: one range is a 206 with Content-Range; none satisfiable is a 416; others get the whole 200', async (t) => {
  const big = Buffer.alloc(200000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 9)) & 0xff;
  const s = await setup(t, {
    '/r': () => ({ headers: { 'Cache-Control': 'max-age=600', ETag: '"r1"' }, body: ALPHA }),
    '/big': () => ({ headers: { 'Cache-Control': 'max-age=600' }, body: big }),
  });
  // the miss goes upstream with its Range; the origin's whole 200 is stored
  const miss = await s.get('/r', { headers: { Range: 'bytes=2-5' } });
  assert.equal(s.origin.seen[0].headers.range, 'bytes=2-5');
  assert.equal(miss.status, 200);
  const one = await s.get('/r', { headers: { Range: 'bytes=2-5' } });
  assert.equal(one.status, 206);
  assert.equal(one.headers['content-range'], 'bytes 2-5/26');
  assert.equal(one.headers['content-length'], '4');
  assert.equal(one.body.toString(), 'cdef');
  assert.equal(one.headers.etag, '"r1"');
  assert.match(one.headers['cache-status'], /hit/);
  assert.match(one.headers.age, /^\d+$/);
  const cases = [
    ['bytes=20-', 206, 'bytes 20-25/26', 'uvwxyz'],
    ['bytes=-3', 206, 'bytes 23-25/26', 'xyz'],
    ['bytes=24-1000', 206, 'bytes 24-25/26', 'yz'],
    ['bytes=0-1,4-5', 200, undefined, ALPHA], // several ranges: the whole 200 (README)
    ['bytes=26-', 416, 'bytes */26', ''],
    ['bytes=-0', 416, 'bytes */26', ''],
    ['bytes=5-4', 200, undefined, ALPHA], // invalid: ignored
    ['items=0-4', 200, undefined, ALPHA], // another unit: ignored
    ['bytes=x', 200, undefined, ALPHA],
  ];
  for (const [range, status, cr, body] of cases) {
    const r = await s.get('/r', { headers: { Range: range } });
    assert.equal(r.status, status, range);
    assert.equal(r.headers['content-range'], cr, range);
    assert.equal(r.body.toString(), body, range);
  }
  assert.equal(s.counts['/r'], 1, 'all from the cache');
  // slices across the stored 64 KiB segments
  await s.get('/big');
  for (const [a, b] of [[65530, 131080], [0, 65535], [65536, 65536], [131072, 199999]]) {
    const r = await s.get('/big', { headers: { Range: `bytes=${a}-${b}` } });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes ${a}-${b}/200000`);
    assert.ok(r.body.equals(big.subarray(a, b + 1)), `bytes ${a}-${b}`);
  }
  assert.equal(s.counts['/big'], 1);
});

test('Range from the cache: If-Range, If-None-Match, HEAD, and limits.ranges at the limit and past it', async (t) => {
  const lm = 'Tue, 24 Nov 2026 10:00:00 GMT';
  const cfg = tmpFile('ranges.yaml', 'limits:\n  ranges: 2\n');
  const s = await setup(t, {
    '/r': () => ({ headers: { 'Cache-Control': 'max-age=600', ETag: '"r1"', 'Last-Modified': lm }, body: ALPHA }),
  }, ['--config', cfg]);
  await s.get('/r');
  const ifr = async (v) => s.get('/r', { headers: { Range: 'bytes=0-2', 'If-Range': v } });
  assert.equal((await ifr('"r1"')).status, 206, 'strong ETag matches');
  assert.equal((await ifr('"r2"')).status, 200, 'another ETag: the whole 200');
  assert.equal((await ifr('W/"r1"')).status, 200, 'a weak tag never matches');
  assert.equal((await ifr(lm)).status, 206, 'the Last-Modified date, strong (before Date)');
  assert.equal((await ifr('Tue, 24 Nov 2026 10:00:01 GMT')).status, 200, 'another date');
  assert.equal((await ifr('garbage')).status, 200);
  const nm = await s.get('/r', { headers: { Range: 'bytes=0-2', 'If-None-Match': '"r1"' } });
  assert.equal(nm.status, 304, 'If-None-Match wins over Range (RFC 9110 §13.2.2)');
  const head = await s.get('/r', { method: 'HEAD', headers: { Range: 'bytes=0-2' } });
  assert.equal(head.status, 200, 'Range applies to GET only');
  assert.equal(head.headers['content-range'], undefined);
  // limits.ranges: 2 specs are read (both unsatisfiable: 416), 3 are not (whole 200)
  const at = await s.get('/r', { headers: { Range: 'bytes=100-,200-' } });
  assert.equal(at.status, 416);
  const over = await s.get('/r', { headers: { Range: 'bytes=100-,200-,300-' } });
  assert.equal(over.status, 200);
  assert.equal(over.body.toString(), ALPHA);
  assert.equal(s.counts['/r'], 1);
});

// ---- 5. Smaller points ----

test('If-Modified-Since against a stored response without Last-Modified compares its Date', async (t) => {
  const now = Math.floor(Date.now() / 1000) * 1000;
  const date = new Date(now).toUTCString();
  const s = await setup(t, {
    '/d': () => ({ headers: { 'Cache-Control': 'max-age=600', Date: date }, body: 'dated' }),
  });
  await s.get('/d');
  const same = await s.get('/d', { headers: { 'If-Modified-Since': date } });
  assert.equal(same.status, 304);
  const later = await s.get('/d', { headers: { 'If-Modified-Since': new Date(now + 3600e3).toUTCString() } });
  assert.equal(later.status, 304);
  const earlier = await s.get('/d', { headers: { 'If-Modified-Since': new Date(now - 1000).toUTCString() } });
  assert.equal(earlier.status, 200);
  assert.equal(earlier.body.toString(), 'dated');
  assert.equal(s.counts['/d'], 1);
});

test('Expires in the wrong letter case is read; one that does not parse means already expired', async (t) => {
  const future = new Date(Date.now() + 3600e3).toUTCString(); // "Tue, 24 Nov 2026 13:00:00 GMT"
  const s = await setup(t, {
    '/lower': (req, n) => ({ headers: { Expires: future.toLowerCase() }, body: `l${n}` }),
    '/bad': (req, n) => ({ headers: { Expires: 'tomorrow' }, body: `b${n}` }),
  });
  await s.get('/lower');
  const hit = await s.get('/lower');
  assert.equal(s.counts['/lower'], 1, `"${future.toLowerCase()}" is a date`);
  assert.match(hit.headers['cache-status'], /hit/);
  await s.get('/bad');
  await s.get('/bad');
  assert.equal(s.counts['/bad'], 2);
});

test('a 206 from the origin is kept as a part: it answers ranges inside it, never a whole request; a 200 replaces it', async (t) => {
  const s = await setup(t, {
    '/p': (req) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range || '');
      if (!m) return { headers: { 'Cache-Control': 'max-age=600', ETag: '"p1"' }, body: ALPHA };
      const [a, b] = [Number(m[1]), Math.min(Number(m[2]), 25)];
      return { status: 206, headers: { 'Cache-Control': 'max-age=600', ETag: '"p1"', 'Content-Range': `bytes ${a}-${b}/26` }, body: ALPHA.slice(a, b + 1) };
    },
  });
  const miss = await s.get('/p', { headers: { Range: 'bytes=0-9' } });
  assert.equal(miss.status, 206);
  assert.match(miss.headers['cache-status'], /stored/);
  const inside = await s.get('/p', { headers: { Range: 'bytes=2-5' } });
  assert.equal(s.counts['/p'], 1, 'answered from the part');
  assert.equal(inside.status, 206);
  assert.equal(inside.headers['content-range'], 'bytes 2-5/26', 'its own Content-Range, once');
  assert.equal(inside.body.toString(), 'cdef');
  assert.match(inside.headers['cache-status'], /hit/);
  assert.equal(inside.headers.etag, '"p1"');
  const outside = await s.get('/p', { headers: { Range: 'bytes=5-15' } });
  assert.equal(s.counts['/p'], 2, 'not inside the part: upstream');
  assert.equal(outside.headers['content-range'], 'bytes 5-15/26');
  const again = await s.get('/p', { headers: { Range: 'bytes=6-7' } });
  assert.equal(s.counts['/p'], 2, 'inside the part that replaced the first');
  assert.equal(again.body.toString(), 'gh');
  const whole = await s.get('/p');
  assert.equal(s.counts['/p'], 3, 'a part never answers a request without Range');
  assert.equal(whole.status, 200);
  assert.equal(whole.body.toString(), ALPHA);
  // the stored 200 replaced the part: every range comes from it now
  const after = await s.get('/p', { headers: { Range: 'bytes=20-25' } });
  assert.equal(after.status, 206);
  assert.equal(after.headers['content-range'], 'bytes 20-25/26');
  assert.equal(after.body.toString(), 'uvwxyz');
  const inPart = await s.get('/p', { headers: { Range: 'bytes=6-7' } });
  assert.equal(inPart.body.toString(), 'gh');
  assert.equal(s.counts['/p'], 3);
});

test('a stored part goes with its URL when an unsafe request invalidates it', async (t) => {
  const s = await setup(t, {
    '/p': (req) => {
      if (req.method !== 'GET') return { status: 204 };
      return { status: 206, headers: { 'Cache-Control': 'max-age=600', 'Content-Range': 'bytes 0-9/26' }, body: ALPHA.slice(0, 10) };
    },
  });
  await s.get('/p', { headers: { Range: 'bytes=0-9' } });
  await s.get('/p', { headers: { Range: 'bytes=1-2' } });
  assert.equal(s.counts['/p'], 1);
  await s.get('/p', { method: 'POST', body: 'x', headers: { 'Content-Length': 1 } });
  await s.get('/p', { headers: { Range: 'bytes=1-2' } });
  assert.equal(s.counts['/p'], 3, 'invalidated (RFC 9111 §4.4)');
});

test('Vary: Accept-Language members compare as a set with their weights', async (t) => {
  const s = await setup(t, {
    '/lang': (req, n) => ({ headers: { 'Cache-Control': 'max-age=600', Vary: 'Accept-Language' }, body: `l${n}` }),
  });
  const lang = (v) => s.get('/lang', { headers: { 'Accept-Language': v } });
  await lang('fr;q=0.5, en');
  assert.equal((await lang('en,fr; q=0.50')).body.toString(), 'l1', 'same set, other order and spelling');
  assert.equal((await lang('EN;q=1, fr;q=0.5')).body.toString(), 'l1');
  assert.equal(s.counts['/lang'], 1);
  assert.equal((await lang('en, fr;q=0.6')).body.toString(), 'l2', 'another weight is another variant');
  assert.equal((await lang('en')).body.toString(), 'l3');
  assert.equal(s.counts['/lang'], 3);
});

test('a POST response with Content-Location of its own target and explicit freshness answers a later GET', async (t) => {
  const s = await setup(t, {
    '/doc': (req, n) => req.method === 'POST'
      ? { headers: { 'Content-Location': '/doc', 'Cache-Control': 'max-age=600' }, body: 'posted' }
      : { headers: { 'Cache-Control': 'max-age=600' }, body: `got${n}` },
    '/other': (req, n) => req.method === 'POST'
      ? { headers: { 'Content-Location': '/elsewhere', 'Cache-Control': 'max-age=600' }, body: 'posted' }
      : { body: `got${n}` },
    '/nofresh': (req, n) => req.method === 'POST'
      ? { headers: { 'Content-Location': '/nofresh' }, body: 'posted' }
      : { body: `got${n}` },
    '/auth': (req, n) => req.method === 'POST'
      ? { headers: { 'Content-Location': '/auth', 'Cache-Control': 'max-age=600' }, body: 'posted' }
      : { body: `got${n}` },
  });
  const post = (p, headers = {}) => s.get(p, { method: 'POST', body: 'x', headers: { 'Content-Length': 1, ...headers } });
  const p1 = await post('/doc');
  assert.match(p1.headers['cache-status'], /stored/);
  const g = await s.get('/doc');
  assert.equal(g.body.toString(), 'posted');
  assert.match(g.headers['cache-status'], /hit/);
  assert.equal(s.counts['/doc'], 1);
  for (const p of ['/other', '/nofresh']) {
    await post(p);
    const r = await s.get(p);
    assert.equal(r.body.toString(), 'got2', `${p}: not kept`);
  }
  await post('/auth', { Authorization: 'Bearer x' });
  assert.equal((await s.get('/auth')).body.toString(), 'got2', 'Authorization without public: not kept (§3.5)');
});

test('a response held for its tag that breaks off: 502, the connection closed, nothing claimed stored', async (t) => {
  const { startRawOrigin, rawExchange } = await import('./lib.mjs');
  const origin = await startRawOrigin((sock) => {
    sock.once('data', () => { sock.write('HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\nonly-part'); setTimeout(() => sock.destroy(), 50); });
  });
  let proxy;
  t.after(async () => { if (proxy) await proxy.stop(); await origin.close(); });
  proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  const { data, closed } = await rawExchange(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 2000 });
  assert.ok(closed);
  const text = data.toString();
  assert.match(text, /^HTTP\/1\.1 502 /);
  assert.doesNotMatch(text, /; stored/);
});

test('Range from the cache picks the Vary variant first', async (t) => {
  const s = await setup(t, {
    '/v': (req) => ({ headers: { 'Cache-Control': 'max-age=600', Vary: 'Accept-Language' }, body: req.headers['accept-language'] === 'fr' ? 'bonjour-tout' : 'hello-world!' }),
  });
  await s.get('/v', { headers: { 'Accept-Language': 'fr' } });
  await s.get('/v', { headers: { 'Accept-Language': 'en' } });
  const fr = await s.get('/v', { headers: { 'Accept-Language': 'fr', Range: 'bytes=0-6' } });
  const en = await s.get('/v', { headers: { 'Accept-Language': 'en', Range: 'bytes=0-4' } });
  assert.equal(fr.status, 206);
  assert.equal(fr.body.toString(), 'bonjour');
  assert.equal(en.body.toString(), 'hello');
  assert.equal(s.counts['/v'], 2);
});
