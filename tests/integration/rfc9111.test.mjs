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
    res.end(r.body ?? '');
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
    '/ours': (req, n) => ({ headers: { 'Idemcache-Cache-Control': 'max-age=300', 'CDN-Cache-Control': 'no-store', 'Other-Cache-Control': 'x' }, body: `u${n}` }),
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
  await s.get('/cdnonly');
  const h2 = await s.get('/cdnonly');
  assert.equal(s.counts['/cdnonly'], 1, 'an invalid first field falls to the next');
  assert.match(h2.headers['cache-status'], /; hit; ttl=(11\d|120)$/);
});
