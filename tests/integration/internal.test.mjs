// The internal front (internal.c): a stale-while-revalidate refresh is an
// exchange with no client behind it. What the refresh itself does (stored,
// logged, a GET for a HEAD) is in pipeline.test.mjs and cache.test.mjs;
// here, how it ends when the worker does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, get, tmpFile, sleep } from './lib.mjs';

test('a refresh still waiting on its origin when the drain times out ends with it (logged 499), and idemcache exits 0', async (t) => {
  let seen = 0;
  let release;
  const held = new Promise((r) => { release = r; });
  const origin = await startOrigin(async (req, res) => {
    seen++;
    if (seen === 1) {
      res.setHeader('Cache-Control', 'max-age=0, stale-while-revalidate=60');
      res.end('v1');
      return;
    }
    await held; // the refresh: no answer until the test ends
    res.end('v2');
  });
  t.after(async () => { release(); await origin.close(); });
  const cfg = tmpFile('c.yaml', 'timeouts:\n  drain: 300ms\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  let stopped = false;
  t.after(async () => { if (!stopped) await proxy.stop(); });

  assert.equal((await get(proxy.port, '/swr')).body.toString(), 'v1');
  const stale = await get(proxy.port, '/swr');
  assert.match(stale.headers['cache-status'], /detail=stale-while-revalidate/);
  for (let i = 0; i < 500 && seen < 2; i++) await sleep(10);
  assert.equal(seen, 2, 'the refresh reached the origin');

  const r = await proxy.stop(); // SIGTERM: the drain waits for the refresh, then gives up
  stopped = true;
  assert.equal(r.code, 0);
  const refresh = proxy.access().filter((l) => l.target === '/swr' && l.upstream_ms >= 0);
  assert.deepEqual(refresh.map((l) => l.status), [200, 499], JSON.stringify(proxy.access()));
});

test('a stale-while-revalidate POST keyed by its body is revalidated in the foreground, its body going along (a refresh is a GET)', async (t) => {
  const seen = [];
  const origin = await startOrigin((req, res, body) => {
    seen.push(`${req.method} ${body}`);
    res.setHeader('Cache-Control', 'max-age=0, stale-while-revalidate=60');
    res.end(`v${seen.length}`);
  });
  t.after(() => origin.close());
  const cfg = tmpFile('c.yaml', 'rules:\n  - path: "/api/*"\n    methods: [POST]\n    cache: true\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(() => proxy.stop());
  const post = () => get(proxy.port, '/api/q', { method: 'POST', body: '{"q":1}', headers: { 'Content-Type': 'application/json' } });
  assert.equal((await post()).body.toString(), 'v1');
  const again = await post();
  assert.equal(again.body.toString(), 'v2', 'answered by the origin, not stale');
  assert.doesNotMatch(again.headers['cache-status'], /stale-while-revalidate/);
  assert.deepEqual(seen, ['POST {"q":1}', 'POST {"q":1}']);
});
