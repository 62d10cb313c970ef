// A PURGE answered while a fetch of the key is upstream: nothing that
// fetch brings back may be stored (cache_stage.c insert_unless_purged),
// neither the purged object a background refresh's 304 revalidates, nor
// its 200, nor a foreground miss's response. Its client still gets it.
// The origin holds each answer until the PURGE has been answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, freePort, get, sleep } from './lib.mjs';

async function until(cond) {
  for (let i = 0; i < 1000 && !cond(); i++) await sleep(10);
  assert.ok(cond(), 'never happened');
}

// refresh: what the origin answers a conditional request with ('304' or
// '200'); each conditional request (and a held miss) waits for release().
async function setup(t, refresh) {
  let release;
  let held = new Promise((r) => { release = r; });
  let version = 0;
  const origin = await startOrigin(async (req, res) => {
    const conditional = req.headers['if-none-match'] === '"e1"';
    if (req.url === '/miss' || conditional) await held;
    if (req.url === '/swr' && !conditional) {
      res.writeHead(200, { 'Cache-Control': 'max-age=0, stale-while-revalidate=60', ETag: '"e1"' });
      res.end(`v${++version}`);
    } else if (conditional && refresh === '304') {
      res.writeHead(304, { 'Cache-Control': 'max-age=60', ETag: '"e1"' });
      res.end();
    } else {
      res.writeHead(200, { 'Cache-Control': 'max-age=60', ETag: '"e2"' });
      res.end(`fresh ${++version}`);
    }
  });
  const admin = await freePort();
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${admin}`]);
  t.after(async () => { release(); await proxy.stop(); await origin.close(); });
  return { origin, proxy, admin, release: () => release() };
}

for (const refresh of ['304', '200']) {
  test(`a PURGE during a background refresh is not undone by the refresh's ${refresh}`, async (t) => {
    const { origin, proxy, admin, release } = await setup(t, refresh);
    const first = await get(proxy.port, '/swr');
    assert.equal(first.body.toString(), 'v1');
    const stale = await get(proxy.port, '/swr');
    assert.match(stale.headers['cache-status'], /stale-while-revalidate/);
    await until(() => origin.seen.length === 2); // the refresh is at the origin, held
    const purged = await get(admin, '/swr', { method: 'PURGE', headers: { Host: `127.0.0.1:${proxy.port}` } });
    assert.equal(purged.status, 200);
    release();
    await until(() => proxy.access().filter((l) => l.target === '/swr').length >= 3); // the refresh ended
    const after = await get(proxy.port, '/swr');
    assert.doesNotMatch(after.headers['cache-status'], /; hit/, 'the purged response came back');
    assert.equal(origin.seen.length, 3, 'the request after the PURGE did not reach the origin');
    assert.equal(after.body.toString(), refresh === '304' ? 'v2' : 'v3', 'the origin\'s answer after the PURGE');
  });
}

test('a PURGE during a foreground miss: the response is served, not stored', async (t) => {
  const { origin, proxy, admin, release } = await setup(t, '200');
  const miss = get(proxy.port, '/miss');
  await until(() => origin.seen.length === 1);
  const purged = await get(admin, '/miss', { method: 'PURGE', headers: { Host: `127.0.0.1:${proxy.port}` } });
  assert.equal(purged.status, 404); // nothing stored yet
  release();
  const r = await miss;
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'fresh 1');
  assert.match(r.headers['cache-status'], /detail=purged/);
  assert.doesNotMatch(r.headers['cache-status'], /stored/);
  const after = await get(proxy.port, '/miss');
  assert.doesNotMatch(after.headers['cache-status'], /; hit/, 'a response fetched before the PURGE was stored');
  assert.equal(origin.seen.length, 2);
  // later fetches are stored again
  assert.match((await get(proxy.port, '/miss')).headers['cache-status'], /; hit/);
});

test('a PURGE while a miss\'s body is still arriving: the response is served whole, not stored', async (t) => {
  let release;
  const held = new Promise((r) => { release = r; });
  let fetches = 0;
  const origin = await startOrigin(async (req, res) => {
    fetches++;
    res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Length': '10' });
    res.write('first');
    if (fetches === 1) await held;
    res.end('-last');
  });
  const admin = await freePort();
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${admin}`]);
  t.after(async () => { release(); await proxy.stop(); await origin.close(); });
  const miss = get(proxy.port, '/body');
  await until(() => fetches === 1);
  await get(admin, '/body', { method: 'PURGE', headers: { Host: `127.0.0.1:${proxy.port}` } });
  release();
  assert.equal((await miss).body.toString(), 'first-last');
  const after = await get(proxy.port, '/body');
  assert.doesNotMatch(after.headers['cache-status'], /; hit/, 'a response fetched across the PURGE was stored');
  assert.equal(fetches, 2);
});
