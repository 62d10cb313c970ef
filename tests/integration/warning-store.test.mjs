// Warning 1xx is never stored (RFC 7234 §5.5, §4.3.4): a 110/111/112/113
// describes the response's freshness at the cache that added it. An
// upstream's (an origin's, or a peer idemcache serving stale) must not be
// replayed on our hits, nor enter the stored head through a 304; 2xx
// (214 Transformation Applied) is kept. Our own 110/111 is added per
// response, as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, get, tmpFile } from './lib.mjs';

// node joins repeated Warning lines with ", ": the members, in order.
const warnings = (r) => (r.headers.warning || '').split(/,\s*(?=\d{3} )/).filter(Boolean);
const freshness = (r) => warnings(r).filter((w) => /^1\d\d /.test(w));

async function single(t, handler) {
  const origin = await startOrigin(handler);
  let proxy;
  t.after(async () => {
    if (proxy) assert.equal((await proxy.stop()).code, 0);
    await origin.close();
  });
  proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  return { origin, proxy, get: (p, o) => get(proxy.port, p, o) };
}

test('an origin\'s Warning 110/112/113 is not replayed on a fresh hit; 214 is', async (t) => {
  const s = await single(t, (req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.setHeader('Warning', [
      '110 - "Response is Stale"',
      '214 - "Transformation Applied"',
      '112 - "Disconnected Operation", 214 proxy.example "Mixed, with a comma"',
      '113 - "Heuristic Expiration"',
    ]);
    res.end('body');
  });
  const miss = await s.get('/w');
  assert.equal(miss.status, 200);
  const hit = await s.get('/w');
  assert.match(hit.headers['cache-status'], /hit/);
  assert.equal(s.origin.seen.length, 1);
  assert.equal(hit.body.toString(), 'body');
  assert.deepEqual(freshness(hit), [], `a fresh hit carries no 1xx Warning: ${hit.headers.warning}`);
  assert.deepEqual(warnings(hit), ['214 - "Transformation Applied"', '214 proxy.example "Mixed, with a comma"']);
});

test('a Warning the cache cannot read (unterminated quote) is not stored; no crash', async (t) => {
  const s = await single(t, (req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.setHeader('Warning', '110 - "Response is Stale, 214 - "x"');
    res.setHeader('X-After', 'still here');
    res.end('ok');
  });
  await s.get('/q');
  const hit = await s.get('/q');
  assert.match(hit.headers['cache-status'], /hit/);
  assert.equal(hit.headers.warning, undefined);
  assert.equal(hit.headers['x-after'], 'still here');
});

test('a 304 with Warning 110 does not add it to the stored head; the stored 214 stays', async (t) => {
  const s = await single(t, (req, res) => {
    res.setHeader('ETag', '"r1"');
    if (req.headers['if-none-match'] === '"r1"') {
      res.statusCode = 304;
      res.setHeader('Cache-Control', 'max-age=600');
      res.setHeader('Warning', '110 - "Response is Stale"');
      res.end();
      return;
    }
    res.setHeader('Cache-Control', 'max-age=0');
    res.setHeader('Warning', '214 - "Transformation Applied"');
    res.end('stored body');
  });
  await s.get('/r');
  const merged = await s.get('/r');
  assert.match(merged.headers['cache-status'], /fwd=stale; fwd-status=304/);
  assert.equal(s.origin.seen.length, 2);
  assert.deepEqual(freshness(merged), [], `the revalidated response is fresh: ${merged.headers.warning}`);
  const hit = await s.get('/r');
  assert.match(hit.headers['cache-status'], /hit/);
  assert.equal(s.origin.seen.length, 2);
  assert.equal(hit.body.toString(), 'stored body');
  assert.deepEqual(freshness(hit), [], `a fresh hit after the 304: ${hit.headers.warning}`);
  assert.deepEqual(warnings(hit), ['214 - "Transformation Applied"'], 'a 304 of only 1xx warnings keeps the stored 214');
});

test('our own Warning 110 still goes out when we serve stale, once', async (t) => {
  const s = await single(t, (req, res) => {
    res.setHeader('Cache-Control', 'max-age=0, stale-while-revalidate=600');
    res.setHeader('ETag', '"s1"');
    res.setHeader('Warning', '110 - "Response is Stale"');
    res.end('swr');
  });
  await s.get('/s');
  const stale = await s.get('/s');
  assert.match(stale.headers['cache-status'], /detail=stale-while-revalidate/);
  assert.deepEqual(freshness(stale), ['110 - "Response is Stale"'], 'ours, not the origin\'s as well');
});

// The pair: a reverse idemcache serves its stale copy (stale-while-revalidate,
// with its Warning 110) to a forward idemcache, for which the response is
// fresh (its own targeted field): the forward side's hits must not say stale.
test('forward + reverse pair: the reverse side\'s Warning 110 is not replayed on the forward side\'s hits', async (t) => {
  const secret = tmpFile('warn-peer.secret', 'a-long-shared-secret-for-the-tests\n');
  const origin = await startOrigin((req, res) => {
    // stale on arrival at the reverse side (Age 100 > 60), within its SWR;
    // fresh for an hour at the forward side
    res.setHeader('CDN-Cache-Control', 'max-age=60, stale-while-revalidate=600');
    res.setHeader('Edge-Cache-Control', 'max-age=3600');
    res.setHeader('Age', '100');
    res.setHeader('Content-Type', 'application/json');
    res.end('{"doc":1}');
  });
  const procs = [];
  t.after(async () => {
    for (const p of procs.reverse()) assert.equal((await p.stop()).code, 0);
    await origin.close();
  });
  const reverseCfg = tmpFile('warn-reverse.yaml', `peers:\n  - id: edge-1\n    secret_file: ${secret}\n`);
  const reverse = await startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`]);
  procs.push(reverse);
  const forwardCfg = tmpFile('warn-forward.yaml', 'cache:\n  targeted_fields: [Edge-Cache-Control]\n');
  const forward = await startProxy(['--mode', 'forward', '--config', forwardCfg, '--peer', `http://127.0.0.1:${reverse.port}`,
    '--peer-id', 'edge-1', '--peer-secret', secret]);
  procs.push(forward);
  // the reverse side stores it first, so that the forward side's miss is its stale hit
  const primed = await get(reverse.port, '/doc', { headers: { Host: 'origin.test' } });
  assert.equal(primed.status, 200);
  const miss = await get(forward.port, 'http://origin.test/doc');
  assert.equal(miss.status, 200);
  assert.equal(miss.body.toString(), '{"doc":1}');
  assert.match(miss.headers['cache-status'] || '', /detail=stale-while-revalidate/, 'the reverse side served it stale');
  assert.deepEqual(freshness(miss), ['110 - "Response is Stale"'], 'relayed on the miss as the reverse side said it');
  const hit = await get(forward.port, 'http://origin.test/doc');
  assert.equal(hit.body.toString(), '{"doc":1}');
  assert.match(hit.headers['cache-status'], /^idemcache; hit/, `a hit at the forward side: ${hit.headers['cache-status']}`);
  assert.deepEqual(freshness(hit), [], `fresh at the forward side: ${hit.headers.warning}`);
});
