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
