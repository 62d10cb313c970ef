// Which requests share an entry, and which rules see them (issue 10,
// findings 9 and 10, re-attack C): rules and the naming veto on the
// normalized path and, for "do not cache", on its loose form too,
// PURGE of a URL removing every entry invalidation would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, get, freePort, tmpFile } from './lib.mjs';

// An origin that counts per method and path and lets everything be cached.
async function setup(yaml, extra = []) {
  const counts = {};
  const origin = await startOrigin((req, res, body) => {
    const k = `${req.method} ${new URL(req.url, 'http://x').pathname}`;
    counts[k] = (counts[k] || 0) + 1;
    res.setHeader('Cache-Control', 'max-age=60');
    res.setHeader('Content-Type', req.headers['content-type'] || 'text/plain');
    res.end(`${k} #${counts[k]} ${body}`);
  });
  const cfg = tmpFile('keys.yaml', yaml);
  let proxy;
  try {
    proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg, ...extra]);
  } catch (e) {
    await origin.close();
    throw e;
  }
  return {
    proxy, origin, counts,
    get: (path, opts) => get(proxy.port, path, opts),
    async close() { const r = await proxy.stop(); await origin.close(); assert.equal(r.code, 0); },
  };
}

const PROC = '/idem.example.v1.CatalogService/GetItem';

test('PURGE of a URL removes its GET, QUERY, POST (rule) and Connect entries', async (t) => {
  const adminPort = await freePort();
  const s = await setup(
    `connect:\n  cacheable: [${PROC}]\nrules:\n  - path: "${PROC}"\n    methods: [POST]\n    cache: true\n`,
    ['--admin', `127.0.0.1:${adminPort}`]);
  t.after(() => s.close());
  const host = { Host: `127.0.0.1:${s.proxy.port}` };
  const send = {
    get: () => s.get(PROC),
    query: () => s.get(PROC, { method: 'QUERY', body: 'q', headers: { 'Content-Type': 'text/plain', 'Content-Length': 1 } }),
    post: () => s.get(PROC, { method: 'POST', body: 'p', headers: { 'Content-Type': 'text/plain', 'Content-Length': 1 } }),
    connect: () => s.get(PROC, { method: 'POST', body: '{"id":"x"}', headers: { 'Content-Type': 'application/json', 'Content-Length': 10 } }),
  };
  for (const [name, f] of Object.entries(send)) {
    const a = await f();
    assert.match(a.headers['cache-status'], /stored/, `${name} is stored`);
    const b = await f();
    assert.match(b.headers['cache-status'], /^idemcache; hit/, `${name} hits`);
  }
  assert.equal(JSON.parse((await get(adminPort, '/stats')).body).objects, 4);
  const p = await get(adminPort, PROC, { method: 'PURGE', headers: host });
  assert.equal(p.status, 200);
  assert.deepEqual(JSON.parse(p.body), { purged: 4, key: `//127.0.0.1:${s.proxy.port}${PROC}` });
  for (const [name, f] of Object.entries(send)) {
    const c = await f();
    assert.doesNotMatch(c.headers['cache-status'], /hit/, `${name} is a miss after the PURGE`);
  }
  assert.deepEqual(s.counts, { [`GET ${PROC}`]: 2, [`QUERY ${PROC}`]: 2, [`POST ${PROC}`]: 4 });
});

test('web cache deception: an escaped or dotted spelling of /account/* meets its cache: false rule', async (t) => {
  const s = await setup('rules:\n  - path: "/account/*"\n    cache: false\n');
  t.after(() => s.close());
  const victim = { Cookie: 'session=alice' };
  for (const path of ['/%61ccount/profile', '/x/../account/profile', '/x/%2e%2E/account/profile', '/./%61ccount/profile']) {
    const a = await s.get(path, { headers: victim });
    assert.match(a.headers['cache-status'], /fwd=bypass; .*detail=rule/, path);
    const b = await s.get(path); // the attacker, with no cookie
    assert.doesNotMatch(b.headers['cache-status'], /hit/, `${path}: the victim's answer was not stored`);
  }
  // the origin saw every request, with the target as it was sent
  assert.deepEqual(s.origin.seen.map((r) => r.url), [
    '/%61ccount/profile', '/%61ccount/profile', '/x/../account/profile', '/x/../account/profile',
    '/x/%2e%2E/account/profile', '/x/%2e%2E/account/profile', '/./%61ccount/profile', '/./%61ccount/profile',
  ]);
  // a path outside the rule is still cached
  await s.get('/%61bout');
  assert.match((await s.get('/%61bout')).headers['cache-status'], /hit/);
});

test('naming veto: POST /api/%73etUser is a mutation like /api/setUser', async (t) => {
  const s = await setup('rules:\n  - path: "/api/*"\n    methods: [POST]\n    cache: true\n');
  t.after(() => s.close());
  const post = (path) => s.get(path, { method: 'POST', body: '{"name":"x"}', headers: { 'Content-Type': 'application/json', 'Content-Length': 12 } });
  for (const path of ['/api/%73etUser', '/api/%53et%55ser', '/api/x/..%2f../%73etUser']) {
    const a = await post(path);
    // "..%2f.." takes the last one out of /api/ loosely: then no rule allows it at all
    assert.match(a.headers['cache-status'], path.includes('%2f') ? /fwd=bypass; .*detail=no-rule/ : /fwd=bypass; .*detail=naming/, path);
    const b = await post(path);
    assert.doesNotMatch(b.headers['cache-status'], /hit/, path);
  }
  assert.equal(s.counts['POST /api/%73etUser'], 2);
  // a read by its name is cached as the rule says
  await post('/api/%67etUser');
  assert.match((await post('/api/%67etUser')).headers['cache-status'], /hit/);
});

// Issue 10, re-attack C: origins route more spellings to one handler than
// RFC 3986 calls equal. This one, like many, merges slashes (nginx), drops
// ;params (Tomcat, Jetty), decodes until stable and ignores case (Express),
// and answers each user's profile from the cookie with max-age=60, trusting
// the proxy's rule.
async function looseOrigin(yaml) {
  const counts = {};
  const origin = await startOrigin((req, res) => {
    let p = req.url.split('?')[0];
    for (;;) {
      let q;
      try { q = decodeURIComponent(p); } catch { break; }
      if (q === p) break;
      p = q;
    }
    p = new URL(p.replace(/;[^/]*/g, '').replace(/\/+/g, '/'), 'http://x').pathname.toLowerCase();
    counts[p] = (counts[p] || 0) + 1;
    res.setHeader('Cache-Control', 'max-age=60');
    if (p === '/account/profile') return res.end(`profile of ${req.headers.cookie || 'nobody'}`);
    res.end(`page ${p}`);
  });
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', tmpFile('loose.yaml', yaml)]);
  return {
    proxy, origin, counts,
    get: (path, opts) => get(proxy.port, path, opts),
    async close() { const r = await proxy.stop(); await origin.close(); assert.equal(r.code, 0); },
  };
}

test('web cache deception at a loose origin: //, ;params, case and double encoding meet the cache: false rule', async (t) => {
  // an exception written first must not let a spelling escape into /account
  const s = await looseOrigin('rules:\n  - path: "/public/*"\n    cache: true\n  - path: "/account/*"\n    cache: false\n');
  t.after(() => s.close());
  const spellings = ['//account/profile', '/account;x/profile', '/ACCOUNT/profile', '/%2561ccount/profile',
    '/Account/profile;.css', '/public/..;/account/profile', '/public/..%2faccount/profile'];
  for (const path of spellings) {
    const victim = await s.get(path, { headers: { Cookie: 'session=alice' } });
    assert.equal(victim.body.toString(), 'profile of session=alice', `${path} reaches the profile`);
    assert.match(victim.headers['cache-status'], /fwd=bypass; .*detail=rule/, path);
    const attacker = await s.get(path); // no cookie
    assert.equal(attacker.body.toString(), 'profile of nobody', `${path}: the attacker never gets the victim's page`);
    assert.doesNotMatch(attacker.headers['cache-status'], /hit/, path);
  }
  assert.equal(s.counts['/account/profile'], 2 * spellings.length);
  // the exception itself, and pages outside the rule, are still cached
  for (const path of ['/public/x', '/about']) {
    await s.get(path);
    assert.match((await s.get(path)).headers['cache-status'], /^idemcache; hit/, path);
  }
});

test('naming veto on the loose last segment: POST /api/%2573etUser is a mutation', async (t) => {
  const s = await looseOrigin('rules:\n  - path: "/api/*"\n    methods: [POST]\n    cache: true\n');
  t.after(() => s.close());
  const post = (path) => s.get(path, { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json', 'Content-Length': 2 } });
  for (const path of ['/api/%2573etUser', '/api/%252573etUser', '/api/x/%252e%252e/%2573etUser']) {
    const a = await post(path);
    assert.match(a.headers['cache-status'], /fwd=bypass; .*detail=naming/, path);
    assert.doesNotMatch((await post(path)).headers['cache-status'], /hit/, path);
  }
  assert.equal(s.counts['/api/setuser'], 6);
  await post('/api/%2567etUser'); // a read, by its name: cached as the rule says
  assert.match((await post('/api/%2567etUser')).headers['cache-status'], /^idemcache; hit/);
});

test('a cache: true rule is not widened by the loose form', async (t) => {
  // the origin gives no freshness: only the rule's ttl lets a GET be stored
  const counts = {};
  const origin = await startOrigin((req, res) => {
    counts[req.url] = (counts[req.url] || 0) + 1;
    res.end(`${req.method} ${req.url}`);
  });
  const cfg = tmpFile('allow.yaml', 'rules:\n  - path: "/public/*"\n    cache: true\n    ttl: 60s\n  - path: "/api/*"\n    methods: [POST]\n    cache: true\n    ttl: 60s\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  t.after(async () => { const r = await proxy.stop(); await origin.close(); assert.equal(r.code, 0); });
  // the strict spelling gets the rule's ttl
  await get(proxy.port, '/public/x');
  assert.match((await get(proxy.port, '/public/x')).headers['cache-status'], /^idemcache; hit/);
  // spellings only the loose form puts under /public/ do not
  for (const path of ['//public/x', '/PUBLIC/x', '/public;v=1/x', '/%2570ublic/x']) {
    await get(proxy.port, path);
    const b = await get(proxy.port, path);
    assert.doesNotMatch(b.headers['cache-status'], /hit/, path);
    assert.equal(counts[path], 2, `${path} reached the origin each time`);
  }
  // nor does a POST rule allow what only its loose form matches
  const post = (path) => get(proxy.port, path, { method: 'POST', body: 'x', headers: { 'Content-Type': 'text/plain', 'Content-Length': 1 } });
  await post('/api/list');
  assert.match((await post('/api/list')).headers['cache-status'], /^idemcache; hit/);
  for (const path of ['//api/list', '/API/list']) {
    const a = await post(path);
    assert.match(a.headers['cache-status'], /fwd=bypass; .*detail=no-rule/, path);
    assert.doesNotMatch((await post(path)).headers['cache-status'], /hit/, path);
  }
});
