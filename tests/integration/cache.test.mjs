// The RFC 9111 cache against an origin that counts what reaches it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, get, freePort, tmpFile, sleep, rawExchange, parseResponses } from './lib.mjs';

// routes: path -> (req, count) => { status, headers, body }
async function setup(routes, extra = [], workers = 1) {
  const counts = {};
  const origin = await startOrigin(async (req, res, body) => {
    const p = new URL(req.url, 'http://x').pathname;
    counts[p] = (counts[p] || 0) + 1;
    const r = await (routes[p] || (() => ({ status: 404, headers: {}, body: 'nope' })))(req, counts[p], body);
    res.statusCode = r.status || 200;
    for (const [k, v] of Object.entries(r.headers || {})) res.setHeader(k, v);
    res.end(r.body ?? '');
  });
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, ...extra], { workers });
  return {
    proxy, origin, counts,
    get: (path, opts) => get(proxy.port, path, opts),
    async close() { const r = await proxy.stop(); await origin.close(); assert.equal(r.code, 0); },
  };
}

const fresh = (n, extra = {}) => ({ headers: { 'Cache-Control': 'max-age=60', ...extra }, body: `v${n}` });

test('a fresh hit never reaches the origin; Age and Cache-Status are sent', async () => {
  const t = await setup({ '/a': (req, n) => fresh(n) });
  const a = await t.get('/a');
  assert.equal(a.headers['cache-status'], 'idemcache; fwd=uri-miss; fwd-status=200; stored');
  for (let i = 0; i < 5; i++) {
    const b = await t.get('/a');
    assert.equal(b.body.toString(), 'v1');
    assert.match(b.headers['cache-status'], /^idemcache; hit; ttl=\d+$/);
    assert.match(b.headers.age, /^\d+$/);
  }
  assert.equal(t.counts['/a'], 1);
  // query strings are part of the key
  await t.get('/a?x=1');
  assert.equal(t.counts['/a'], 2);
  await t.close();
});

test('not stored: no-store, private, Authorization, Set-Cookie without public, no freshness on 302', async () => {
  const t = await setup({
    '/ns': (req, n) => ({ headers: { 'Cache-Control': 'no-store, max-age=60' }, body: `${n}` }),
    '/priv': (req, n) => ({ headers: { 'Cache-Control': 'private, max-age=60' }, body: `${n}` }),
    '/cookie': (req, n) => fresh(n, { 'Set-Cookie': `session=${n}` }),
    '/auth': (req, n) => fresh(n),
    '/redir': (req, n) => ({ status: 302, headers: { Location: '/a' }, body: `${n}` }),
  });
  for (const [p, why] of [['/ns', 'no-store'], ['/priv', 'private'], ['/cookie', 'set-cookie'], ['/redir', 'no-freshness']]) {
    const r1 = await t.get(p);
    const r2 = await t.get(p);
    assert.equal(t.counts[p], 2, p);
    assert.match(r1.headers['cache-status'], new RegExp(`fwd=uri-miss; fwd-status=\\d+; detail=${why}$`), p);
    assert.match(r2.body.toString(), /^v?2$/, p);
  }
  const c2 = await t.get('/cookie');
  assert.deepEqual(c2.headers['set-cookie'], ['session=3'], 'each client gets its own cookie');
  assert.equal(c2.body.toString(), 'v3');
  await t.get('/auth', { headers: { Authorization: 'Bearer x' } });
  await t.get('/auth', { headers: { Authorization: 'Bearer x' } });
  assert.equal(t.counts['/auth'], 2);
  await t.close();
});

test('stale entries are revalidated with If-None-Match; a 304 freshens and is merged', async () => {
  const t = await setup({
    '/v': (req, n) => {
      if (req.headers['if-none-match'] === '"e1"') return { status: 304, headers: { 'Cache-Control': 'max-age=60', 'X-New': 'merged', ETag: '"e1"' } };
      return { headers: { 'Cache-Control': 'max-age=0', ETag: '"e1"', 'X-Old': 'kept' }, body: 'original body' };
    },
  });
  await t.get('/v');
  const r = await t.get('/v');
  assert.equal(t.counts['/v'], 2);
  assert.equal(t.origin.seen[1].headers['if-none-match'], '"e1"');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'original body');
  assert.equal(r.headers['x-new'], 'merged');
  assert.equal(r.headers['x-old'], 'kept');
  assert.match(r.headers['cache-status'], /fwd=stale; fwd-status=304/);
  const r3 = await t.get('/v'); // now fresh for 60 s
  assert.match(r3.headers['cache-status'], /hit/);
  assert.equal(t.counts['/v'], 2);
  await t.close();
});

test('conditional requests are answered from the cache with 304', async () => {
  const lm = 'Tue, 10 Nov 2026 10:00:00 GMT';
  const t = await setup({ '/c': (req, n) => fresh(n, { ETag: 'W/"tag"', 'Last-Modified': lm, Vary: 'Accept' }) });
  await t.get('/c');
  const a = await t.get('/c', { headers: { 'If-None-Match': '"other", "tag"' } });
  assert.equal(a.status, 304);
  assert.equal(a.headers.etag, 'W/"tag"');
  assert.equal(a.headers.vary, 'Accept');
  assert.equal(a.body.length, 0);
  const b = await t.get('/c', { headers: { 'If-Modified-Since': 'Tue, 10 Nov 2026 10:00:00 GMT' } });
  assert.equal(b.status, 304);
  const c = await t.get('/c', { headers: { 'If-Modified-Since': 'Tue, 10 Nov 2026 09:59:59 GMT' } });
  assert.equal(c.status, 200);
  const d = await t.get('/c', { headers: { 'If-None-Match': '"nope"', 'If-Modified-Since': lm } });
  assert.equal(d.status, 200, 'If-None-Match takes precedence');
  assert.equal(t.counts['/c'], 1);
  await t.close();
});

test('Vary: each variant is stored apart; vary-miss is reported', async () => {
  const t = await setup({ '/lang': (req, n) => fresh(n, { Vary: 'Accept-Language' }) });
  const en1 = await t.get('/lang', { headers: { 'Accept-Language': 'en' } });
  const fr1 = await t.get('/lang', { headers: { 'Accept-Language': 'fr' } });
  assert.match(fr1.headers['cache-status'], /fwd=vary-miss/);
  const en2 = await t.get('/lang', { headers: { 'Accept-Language': 'en' } });
  const fr2 = await t.get('/lang', { headers: { 'Accept-Language': 'fr' } });
  assert.equal(en2.body.toString(), en1.body.toString());
  assert.equal(fr2.body.toString(), fr1.body.toString());
  assert.notEqual(en1.body.toString(), fr1.body.toString());
  assert.equal(t.counts['/lang'], 2);
  await t.close();
});

test('Vary: * is never stored', async () => {
  const t = await setup({ '/star': (req, n) => fresh(n, { Vary: '*' }) });
  await t.get('/star');
  const r = await t.get('/star');
  assert.match(r.headers['cache-status'], /detail=vary-star/);
  assert.equal(t.counts['/star'], 2);
  await t.close();
});

test('a successful unsafe request invalidates the URI and same-host Location; an error does not', async () => {
  const t = await setup({
    '/doc': (req, n) => fresh(n),
    '/other': (req, n) => fresh(n),
    '/fail': (req, n) => fresh(n),
    '/post': (req, n) => ({ status: 201, headers: { Location: '/other' }, body: 'created' }),
  });
  for (const p of ['/doc', '/other', '/fail']) await t.get(p);
  await t.get('/doc', { method: 'PUT', body: 'x', headers: { 'Content-Length': 1 } });
  await t.get('/post', { method: 'POST', body: 'x', headers: { 'Content-Length': 1 } });
  await t.get('/doc');
  await t.get('/other');
  assert.equal(t.counts['/doc'], 3); // GET, PUT, GET again
  assert.equal(t.counts['/other'], 2);
  t.origin.server.removeAllListeners('request');
  t.origin.server.on('request', (req, res) => { req.resume(); req.on('end', () => { res.statusCode = 500; res.end(); }); });
  await t.get('/fail', { method: 'DELETE' });
  const f = await t.get('/fail');
  assert.match(f.headers['cache-status'], /hit/, 'an error response must not flush the cache');
  await t.close();
});

test('only-if-cached: 504 when nothing usable is stored', async () => {
  const t = await setup({ '/o': (req, n) => fresh(n) });
  const miss = await t.get('/o', { headers: { 'Cache-Control': 'only-if-cached' } });
  assert.equal(miss.status, 504);
  assert.equal(t.counts['/o'], undefined);
  await t.get('/o');
  const hit = await t.get('/o', { headers: { 'Cache-Control': 'only-if-cached' } });
  assert.equal(hit.status, 200);
  assert.equal(hit.body.toString(), 'v1');
  assert.equal(t.counts['/o'], 1, 'only-if-cached never asks the origin');
  await t.close();
});

test('request directives: no-cache revalidates, no-store bypasses, max-age=0 refuses a fresh copy', async () => {
  const t = await setup({ '/d': (req, n) => fresh(n) });
  await t.get('/d');
  const nc = await t.get('/d', { headers: { 'Cache-Control': 'no-cache' } });
  assert.match(nc.headers['cache-status'], /fwd=request/);
  const ns = await t.get('/d', { headers: { 'Cache-Control': 'no-store' } });
  assert.match(ns.headers['cache-status'], /fwd=bypass; detail=no-store/);
  const pr = await t.get('/d', { headers: { Pragma: 'no-cache' } });
  assert.match(pr.headers['cache-status'], /fwd=request/);
  assert.equal(t.counts['/d'], 4);
  // the stored copy is fresh (max-age=60) but a second old; max-age=0 refuses it
  await sleep(1100);
  assert.match((await t.get('/d')).headers['cache-status'], /hit/);
  const ma = await t.get('/d', { headers: { 'Cache-Control': 'max-age=0' } });
  assert.match(ma.headers['cache-status'], /fwd=request/);
  assert.equal(t.counts['/d'], 5);
  const ma60 = await t.get('/d', { headers: { 'Cache-Control': 'max-age=60' } });
  assert.match(ma60.headers['cache-status'], /hit/, 'a max-age the copy meets is a hit');
  await t.close();
});

test('stale-if-error: a stale copy with Warning 111 when the origin fails', async () => {
  const t = await setup({
    '/s': (req, n) => (n === 1 ? { headers: { 'Cache-Control': 'max-age=1, stale-if-error=60' }, body: 'good' } : { status: 503, body: 'down' }),
    '/m': (req, n) => (n === 1 ? { headers: { 'Cache-Control': 'max-age=1, must-revalidate, stale-if-error=60' }, body: 'good' } : { status: 503, body: 'down' }),
  });
  await t.get('/s');
  await t.get('/m');
  await sleep(2100);
  const r = await t.get('/s');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'good');
  assert.match(r.headers.warning, /^111 /);
  assert.match(r.headers['cache-status'], /fwd=stale; fwd-status=503/);
  const m = await t.get('/m');
  assert.equal(m.status, 503, 'must-revalidate forbids serving stale');
  await t.close();
});

test('serve_stale_on_error covers an origin that is down', async () => {
  const cfg = tmpFile('c.yaml', 'cache:\n  serve_stale_on_error: true\n');
  const t = await setup({ '/x': () => ({ headers: { 'Cache-Control': 'max-age=1' }, body: 'kept' }) }, ['--config', cfg]);
  await t.get('/x');
  await sleep(1100);
  await t.origin.close();
  const r = await t.get('/x');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'kept');
  assert.match(r.headers.warning, /^111 /);
  assert.match(r.headers['cache-status'], /fwd=stale; fwd-status=502/);
  await t.proxy.stop();
});

test('HEAD is served from a stored GET', async () => {
  const t = await setup({ '/h': (req, n) => fresh(n) });
  await t.get('/h');
  const { data } = await rawExchange(t.proxy.port, `HEAD /h HTTP/1.1\r\nHost: 127.0.0.1:${t.proxy.port}\r\n\r\n`, { idleMs: 300 });
  const [r] = parseResponses(data, { head: [0] });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], '2');
  assert.match(r.headers['cache-status'], /hit/);
  assert.equal(t.counts['/h'], 1);
  await t.close();
});

test('objects over cache.max_object_size stream through unstored', async () => {
  const cfg = tmpFile('c.yaml', 'cache:\n  max_object_size: 1KiB\n');
  const big = 'b'.repeat(5000);
  const t = await setup({ '/big': () => ({ headers: { 'Cache-Control': 'max-age=60' }, body: big }) }, ['--config', cfg]);
  const r = await t.get('/big');
  assert.equal(r.body.toString(), big);
  assert.match(r.headers['cache-status'], /detail=too-large/);
  await t.get('/big');
  assert.equal(t.counts['/big'], 2);
  await t.close();
});

test('pipelined hits are answered in order', async () => {
  const t = await setup({ '/p1': (req, n) => fresh(n), '/p2': (req, n) => fresh(n) });
  await t.get('/p1');
  await t.get('/p2');
  const reqs = ['/p1', '/p2', '/p1', '/nope', '/p2'].map((u) => `GET ${u} HTTP/1.1\r\nHost: 127.0.0.1:${t.proxy.port}\r\n\r\n`).join('');
  const { data } = await rawExchange(t.proxy.port, reqs, { idleMs: 400 });
  const res = parseResponses(data);
  assert.deepEqual(res.map((r) => r.status), [200, 200, 200, 404, 200]);
  assert.deepEqual(res.map((r) => r.body.toString()), ['v1', 'v1', 'v1', 'nope', 'v1']);
  await t.close();
});

test('many workers share one cache', async () => {
  const t = await setup({ '/w': (req, n) => fresh(n) }, [], 2);
  await t.get('/w');
  const rs = await Promise.all(Array.from({ length: 40 }, () => t.get('/w')));
  assert.ok(rs.every((r) => r.body.toString() === 'v1'));
  assert.equal(t.counts['/w'], 1);
  await t.close();
});

test('a 4 MiB hit goes out whole (partial writes resume from the stored segments)', async () => {
  const big = Buffer.alloc(4 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 0xff;
  const t = await setup({ '/4m': () => ({ headers: { 'Cache-Control': 'max-age=60' }, body: big }) });
  const a = await t.get('/4m');
  assert.ok(a.body.equals(big));
  const rs = await Promise.all([t.get('/4m'), t.get('/4m'), t.get('/4m')]);
  for (const r of rs) {
    assert.match(r.headers['cache-status'], /hit/);
    assert.ok(r.body.equals(big));
  }
  assert.equal(t.counts['/4m'], 1);
  await t.close();
});

test('coalescing: 100 concurrent misses make one origin request (two workers)', async () => {
  const t = await setup({ '/slow': (req, n) => fresh(n) }, [], 2);
  t.origin.server.removeAllListeners('request');
  let hits = 0;
  t.origin.server.on('request', (req, res) => {
    hits++;
    setTimeout(() => { res.setHeader('Cache-Control', 'max-age=60'); res.end(`one-${hits}`); }, 300);
  });
  const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 200 });
  const rs = await Promise.all(Array.from({ length: 100 }, () => t.get('/slow', { agent })));
  agent.destroy();
  assert.equal(hits, 1);
  assert.ok(rs.every((r) => r.status === 200 && r.body.toString() === 'one-1'));
  await t.close();
});

test('coalescing: a private response is never shared; each waiter goes upstream itself', async () => {
  const t = await setup({}, [], 2);
  t.origin.server.removeAllListeners('request');
  let n = 0;
  t.origin.server.on('request', (req, res) => {
    const mine = ++n;
    setTimeout(() => { res.setHeader('Cache-Control', 'private, max-age=60'); res.end(`for-${mine}`); }, 200);
  });
  const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 100 });
  const rs = await Promise.all(Array.from({ length: 20 }, () => t.get('/p', { agent })));
  agent.destroy();
  assert.equal(n, 20);
  assert.equal(new Set(rs.map((r) => r.body.toString())).size, 20, 'every client got its own response');
  await t.close();
});

test('coalescing: a Set-Cookie response is never handed to a waiter', async () => {
  const t = await setup({}, [], 2);
  t.origin.server.removeAllListeners('request');
  let n = 0;
  t.origin.server.on('request', (req, res) => {
    const mine = ++n;
    setTimeout(() => { res.setHeader('Cache-Control', 'max-age=60'); res.setHeader('Set-Cookie', `session=${mine}`); res.end(`user-${mine}`); }, 200);
  });
  const agent = new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 100 });
  const rs = await Promise.all(Array.from({ length: 10 }, () => t.get('/login', { agent })));
  agent.destroy();
  assert.equal(n, 10);
  assert.equal(new Set(rs.map((r) => r.headers['set-cookie'][0])).size, 10);
  assert.match(rs[0].headers['cache-status'], /detail=set-cookie/);
  await t.close();
});

test('coalescing: when the leader fails, waiters are still answered', async () => {
  const t = await setup({}, []);
  t.origin.server.removeAllListeners('request');
  let n = 0;
  let failed = false;
  let beforeFailure = 0; // requests that reached the origin while the leader's fetch ran
  t.origin.server.on('request', (req, res) => {
    n++;
    if (n === 1) return setTimeout(() => { failed = true; req.socket.destroy(); }, 200); // the leader's fetch dies
    if (!failed) beforeFailure++;
    res.setHeader('Cache-Control', 'max-age=60');
    res.end('recovered');
  });
  const rs = await Promise.all(Array.from({ length: 10 }, () => t.get('/f')));
  assert.equal(rs.filter((r) => r.status === 502).length, 1, 'only the leader sees the failure');
  assert.ok(rs.filter((r) => r.status === 200).every((r) => r.body.toString() === 'recovered'));
  assert.equal(beforeFailure, 0, 'the others waited for the leader (coalesced), then went upstream');
  assert.ok(n >= 2 && n <= 10);
  await t.close();
});

test('generated ETag: a stored 200 without one gets a body hash; If-None-Match then gets 304', async () => {
  // Last-Modified makes the expired entry revalidate (with If-Modified-Since),
  // which is when our tag could leak upstream as an If-None-Match.
  const lm = new Date(Date.now() - 86400e3).toUTCString();
  const t = await setup({ '/g': () => ({ headers: { 'Cache-Control': 'max-age=1', 'Last-Modified': lm }, body: 'same bytes' }) });
  await t.get('/g');
  const hit = await t.get('/g');
  const tag = hit.headers.etag;
  assert.match(tag, /^"i-[A-Za-z0-9_-]{43}"$/);
  const c = await t.get('/g', { headers: { 'If-None-Match': tag } });
  assert.equal(c.status, 304);
  // After expiry the origin is asked again (without our tag); the same body gets the same tag.
  await sleep(1100);
  const again = await t.get('/g');
  assert.equal(t.origin.seen.length, 2);
  assert.equal(t.origin.seen.at(-1).headers['if-modified-since'], lm, 'a revalidation');
  assert.equal(t.origin.seen.at(-1).headers['if-none-match'], undefined, 'our tag never goes upstream');
  const hit2 = await t.get('/g');
  assert.equal(hit2.headers.etag, tag);
  assert.equal(again.body.toString(), 'same bytes');
  await t.close();
});

test('admin listener: /healthz, /stats, PURGE by URL and by Surrogate-Key', async () => {
  const adminPort = await freePort();
  const t = await setup({
    '/a': (req, n) => fresh(n, { 'Surrogate-Key': 'user-1 list' }),
    '/b': (req, n) => fresh(n, { 'Surrogate-Key': 'user-2' }),
    '/c': (req, n) => fresh(n, { 'Surrogate-Key': 'list' }),
  }, ['--admin', `127.0.0.1:${adminPort}`]);
  const host = { Host: `127.0.0.1:${t.proxy.port}` };
  for (const p of ['/a', '/b', '/c']) await t.get(p);
  assert.equal((await get(adminPort, '/healthz')).status, 200);
  const stats = JSON.parse((await get(adminPort, '/stats')).body);
  assert.equal(stats.objects, 3);
  // PURGE one URL (origin-form + Host, as curl -X PURGE sends it)
  const p1 = await get(adminPort, '/b', { method: 'PURGE', headers: host });
  assert.equal(p1.status, 200);
  assert.deepEqual(JSON.parse(p1.body), { purged: 1, key: `//127.0.0.1:${t.proxy.port}/b` });
  assert.equal((await get(adminPort, '/b', { method: 'PURGE', headers: host })).status, 404);
  // PURGE by surrogate key: /a and /c carry "list"
  const p2 = await get(adminPort, '/', { method: 'PURGE', headers: { ...host, 'Surrogate-Key': 'list' } });
  assert.deepEqual(JSON.parse(p2.body), { purged: 2, surrogate_key: 'list' });
  for (const p of ['/a', '/b', '/c']) await t.get(p);
  assert.deepEqual([t.counts['/a'], t.counts['/b'], t.counts['/c']], [2, 2, 2]);
  // the admin port is not a proxy; the proxy port does not purge
  assert.equal((await get(adminPort, '/a')).status, 404);
  const viaProxy = await t.get('/a', { method: 'PURGE' });
  assert.notEqual(viaProxy.headers['content-type'], 'application/json');
  await t.close();
});

test('Vary after a client no-cache: the refetched response is stored under the right variant', async () => {
  const t = await setup({ '/nv': (req, n) => fresh(n, { Vary: 'Accept-Language' }) });
  const en = { 'Accept-Language': 'en' };
  await t.get('/nv', { headers: en });
  const refetched = await t.get('/nv', { headers: { ...en, 'Cache-Control': 'no-cache' } });
  assert.match(refetched.headers['cache-status'], /fwd=request; fwd-status=200; stored/);
  const hit = await t.get('/nv', { headers: en });
  assert.match(hit.headers['cache-status'], /hit/);
  assert.equal(hit.body.toString(), refetched.body.toString());
  const fr = await t.get('/nv', { headers: { 'Accept-Language': 'fr' } });
  assert.match(fr.headers['cache-status'], /fwd=vary-miss/);
  assert.equal(t.counts['/nv'], 3);
  await t.close();
});

test('max-stale serves a stale copy with Warning 110 and a negative ttl', async () => {
  const t = await setup({ '/ms': (req, n) => ({ headers: { 'Cache-Control': 'max-age=1' }, body: `v${n}` }) });
  await t.get('/ms');
  await sleep(2100);
  const r = await t.get('/ms', { headers: { 'Cache-Control': 'max-stale=30' } });
  assert.equal(r.body.toString(), 'v1');
  assert.match(r.headers.warning, /^110 - "Response is Stale"$/);
  assert.match(r.headers['cache-status'], /^idemcache; hit; ttl=-\d+$/);
  assert.equal(t.counts['/ms'], 1);
  await t.close();
});

test('stale-while-revalidate: the stale copy goes out at once, one background refresh per key', async () => {
  const swr = { 'Cache-Control': 'max-age=1, stale-while-revalidate=30' };
  const later = { 'Cache-Control': 'max-age=60' }; // what the refresh brings
  const t = await setup({
    // the refresh is slow, so every request below arrives while it runs
    '/swr': async (req, n) => (n === 1 ? { headers: swr, body: 'v1' } : (await sleep(400), { headers: later, body: `v${n}` })),
    '/etag': (req, n) => (req.headers['if-none-match'] === '"e1"'
      ? { status: 304, headers: { ...later, ETag: '"e1"' } }
      : { headers: { ...swr, ETag: '"e1"' }, body: 'same' }),
  });
  await t.get('/swr');
  await t.get('/etag');
  await sleep(2100);
  const stale = await Promise.all(Array.from({ length: 20 }, () => t.get('/swr')));
  for (const r of stale) {
    assert.equal(r.body.toString(), 'v1');
    assert.match(r.headers.warning, /^110 - "Response is Stale"$/);
    assert.match(r.headers['cache-status'], /^idemcache; hit; ttl=-\d+; detail=stale-while-revalidate$/);
  }
  // wait for the event, not a time: the refreshed copy is served
  let next;
  for (let i = 0; i < 200; i++) {
    next = await t.get('/swr');
    if (next.body.toString() !== 'v1') break;
    await sleep(50);
  }
  assert.equal(t.counts['/swr'], 2, 'one refresh for twenty stale requests');
  assert.equal(next.body.toString(), 'v2');
  assert.match(next.headers['cache-status'], /^idemcache; hit; ttl=\d+$/);
  assert.equal(next.headers.warning, undefined);
  // a refresh with a validator: the origin's 304 freshens the stored copy
  const e = await t.get('/etag');
  assert.equal(e.body.toString(), 'same');
  let e2;
  for (let i = 0; i < 200; i++) {
    e2 = await t.get('/etag');
    if (!/stale-while-revalidate/.test(e2.headers['cache-status'])) break;
    await sleep(50);
  }
  assert.equal(t.counts['/etag'], 2);
  assert.match(e2.headers['cache-status'], /^idemcache; hit; ttl=\d+$/);
  assert.equal(t.origin.seen.at(-1).headers['if-none-match'], '"e1"');
  await t.close();
});

test('stale-while-revalidate: with cache.background_fetches 0 the refresh is in the foreground', async () => {
  const cfg = tmpFile('c.yaml', 'cache:\n  background_fetches: 0\n');
  const t = await setup({ '/f': (req, n) => ({ headers: { 'Cache-Control': 'max-age=1, stale-while-revalidate=30' }, body: `v${n}` }) }, ['--config', cfg]);
  await t.get('/f');
  await sleep(2100);
  const r = await t.get('/f');
  assert.equal(r.body.toString(), 'v2');
  assert.match(r.headers['cache-status'], /fwd=stale; fwd-status=200; stored/);
  await t.close();
});

test('generated ETag on an unstorable 200: it is tagged, and a matching If-None-Match gets 304', async () => {
  const t = await setup({
    '/p': (req, n) => ({ headers: { 'Cache-Control': 'private' }, body: n < 3 ? 'private bytes' : 'changed' }),
    '/ck': () => ({ headers: { 'Cache-Control': 'no-store', 'Set-Cookie': 's=1' }, body: 'cookie' }),
    '/own': () => ({ headers: { 'Cache-Control': 'no-store', ETag: '"o1"' }, body: 'own tag' }),
    '/big': () => ({ headers: { 'Cache-Control': 'no-store' }, body: 'x'.repeat(2048) }),
  }, ['--config', tmpFile('c.yaml', 'cache:\n  etag_hold_max: 1KiB\n')]);
  const a = await t.get('/p');
  assert.equal(a.status, 200);
  assert.equal(a.body.toString(), 'private bytes');
  assert.match(a.headers.etag, /^"i-[A-Za-z0-9_-]{43}"$/);
  assert.equal(a.headers.age, undefined, 'not from the cache');
  assert.match(a.headers['cache-status'], /fwd=uri-miss; fwd-status=200; detail=private/);
  const b = await t.get('/p', { headers: { 'If-None-Match': a.headers.etag } });
  assert.equal(b.status, 304);
  assert.equal(b.headers.etag, a.headers.etag);
  assert.equal(b.headers['cache-control'], 'private');
  assert.equal(t.counts['/p'], 2, 'the origin is still asked: nothing is stored');
  const c = await t.get('/p', { headers: { 'If-None-Match': a.headers.etag } });
  assert.equal(c.status, 200, 'a changed body does not match');
  assert.equal(c.body.toString(), 'changed');
  assert.notEqual(c.headers.etag, a.headers.etag);
  // Set-Cookie would be lost in a 304: always the full response
  const k = await t.get('/ck');
  const k2 = await t.get('/ck', { headers: { 'If-None-Match': k.headers.etag } });
  assert.equal(k2.status, 200);
  assert.equal(k2.headers['set-cookie'][0], 's=1');
  // the origin's own tag is left alone; bodies over etag_hold_max stream untagged
  assert.equal((await t.get('/own')).headers.etag, '"o1"');
  const big = await t.get('/big');
  assert.equal(big.body.length, 2048);
  assert.equal(big.headers.etag, undefined);
  await t.close();
});

// Waiters are served from the leader's response as it streams in. Causal,
// not timed: the origin holds back the rest of its body until every client
// has received the first part, which only streaming can bring about.
for (const framing of ['chunked', 'content-length']) {
  test(`coalescing streams to waiters as the response arrives (${framing}, two workers)`, async () => {
    // A Content-Length response up to cache.etag_hold_max is held for its
    // generated ETag (issue 13), so its waiters cannot stream it: this one
    // is larger than the hold.
    const hold = tmpFile('hold.yaml', 'cache:\n  etag_hold_max: 1000\n');
    const t = await setup({}, framing === 'content-length' ? ['--config', hold] : [], 2);
    t.origin.server.removeAllListeners('request');
    const N = 12;
    let hits = 0, open;
    const gate = new Promise((r) => (open = r));
    const first = 'first-part.'.repeat(3000), rest = 'and-the-rest.'.repeat(5000);
    t.origin.server.on('request', async (req, res) => {
      hits++;
      const headers = { 'Cache-Control': 'max-age=60' };
      if (framing === 'content-length') headers['Content-Length'] = first.length + rest.length;
      res.writeHead(200, headers);
      res.write(first);
      await gate;
      res.end(rest);
    });
    const http = await import('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    let started = 0;
    const one = () => new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: t.proxy.port, path: '/stream', agent }, (res) => {
        const chunks = [];
        let counted = false;
        res.on('data', (d) => {
          chunks.push(d);
          if (!counted && Buffer.concat(chunks).length >= first.length) {
            counted = true;
            if (++started === N) open();
          }
        });
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      }).on('error', reject);
    });
    const rs = await Promise.all(Array.from({ length: N }, one));
    agent.destroy();
    assert.equal(hits, 1, 'one origin request');
    for (const r of rs) assert.equal(r.body, first + rest);
    const collapsed = rs.filter((r) => /; collapsed/.test(r.headers['cache-status']));
    assert.ok(collapsed.length >= 1, 'waiters say they were collapsed (RFC 9211)');
    // and the stored object is whole, with its generated ETag
    const hit = await t.get('/stream');
    assert.match(hit.headers['cache-status'], /^idemcache; hit/);
    assert.equal(hit.body.toString(), first + rest);
    assert.match(hit.headers.etag, /^"i-/);
    await t.close();
  });
}

test('coalescing: when the streamed response breaks off, its waiters are cut off too (never a short body as whole)', async () => {
  // larger than cache.etag_hold_max, so streamed rather than held for its tag
  const t = await setup({}, ['--config', tmpFile('hold.yaml', 'cache:\n  etag_hold_max: 1000\n')]);
  t.origin.server.removeAllListeners('request');
  let hits = 0;
  // The origin breaks off once every client has its first bytes, so all six
  // are streaming from the one fetch when it fails.
  let started = 0;
  let allStarted;
  const everyoneStreaming = new Promise((r) => (allStarted = r));
  t.origin.server.on('request', async (req, res) => {
    hits++;
    res.writeHead(200, { 'Cache-Control': 'max-age=60', 'Content-Length': 100000 });
    res.write('x'.repeat(1000));
    if (hits === 1) await everyoneStreaming;
    req.socket.destroy();
  });
  const http = await import('node:http');
  const one = (count = true) => new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port: t.proxy.port, path: '/broken' }, (res) => {
      let n = 0;
      res.on('data', (d) => { if (n === 0 && count && ++started === 6) allStarted(); n += d.length; });
      res.on('end', () => resolve({ complete: res.complete, n }));
      res.on('aborted', () => resolve({ complete: false, n }));
      res.on('error', () => resolve({ complete: false, n }));
    }).on('error', () => resolve({ complete: false, n: 0 }));
  });
  const rs = await Promise.all(Array.from({ length: 6 }, one));
  assert.equal(hits, 1);
  for (const r of rs) assert.equal(r.complete, false, 'a cut response is never taken as whole');
  await one(false); // nothing was stored: the origin is asked again
  assert.equal(hits, 2);
  await t.close();
});

test('cache.name names this cache in Cache-Status (RFC 9211), so a forward and a reverse idemcache differ', async () => {
  const t = await setup({ '/n': (req, n) => fresh(n) }, ['--config', tmpFile('n.yaml', 'cache:\n  name: edge-7\n')]);
  assert.equal((await t.get('/n')).headers['cache-status'], 'edge-7; fwd=uri-miss; fwd-status=200; stored');
  assert.match((await t.get('/n')).headers['cache-status'], /^edge-7; hit; ttl=\d+$/);
  await t.close();
});

test('an HTTP/1.0 keep-alive client keeps its connection after a 304 from the cache', async () => {
  const t = await setup({ '/k': () => ({ headers: { 'Cache-Control': 'max-age=60', ETag: '"k1"' }, body: 'kept' }) });
  await t.get('/k');
  const req = (extra) => `GET /k HTTP/1.0\r\nHost: 127.0.0.1:${t.proxy.port}\r\nConnection: keep-alive\r\n${extra}\r\n`;
  const { data, closed } = await rawExchange(t.proxy.port, req('If-None-Match: "k1"\r\n') + req(''), { idleMs: 500 });
  const [a, b] = parseResponses(data);
  assert.equal(a.status, 304);
  assert.equal(a.headers.connection, 'keep-alive', 'said, or an HTTP/1.0 client takes the close');
  assert.equal(b.status, 200);
  assert.equal(b.body.toString(), 'kept');
  assert.equal(closed, false);
  await t.close();
});
