// Requests keyed by their body (issue 4): POST by rules, QUERY, against an
// origin that counts what reaches it and keeps every body it received.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { startProxy, startOrigin, get, tmpFile, rawExchange, parseResponses, sleep, SANITIZED } from './lib.mjs';

const RULES = `
rules:
  - path: "/api/write/*"
    methods: [POST]
    cache: false
  - path: "/rpc/*"
    methods: [POST]
    header: "X-Request-Kind: query"
    cache: true
    ttl: 60s
  - path: "/api/*"
    methods: [POST]
    cache: true
    ttl: 60s
    key_headers: [Accept]
body_key:
  max_bytes: 1KiB
naming:
  never_cache_prefixes: [set, add, create, update, delete, remove, put, insert, write]
`;

// The origin answers with a digest of what it got, so a wrong replay shows.
async function setup(extraYaml = '', workers = 1, rules = RULES) {
  const counts = {};
  const bodies = [];
  const origin = await startOrigin((req, res, body) => {
    const k = `${req.method} ${new URL(req.url, 'http://x').pathname}`;
    counts[k] = (counts[k] || 0) + 1;
    bodies.push(body);
    if (req.url.startsWith('/fail')) { res.statusCode = 500; res.end('no'); return; }
    if (req.url.startsWith('/nofresh')) { res.end(`n${counts[k]}`); return; }
    res.setHeader('Content-Type', 'application/json');
    if (req.url.startsWith('/search')) res.setHeader('Cache-Control', 'max-age=60');
    if (req.url.startsWith('/api/short')) res.setHeader('Cache-Control', 'max-age=1'); // shorter than the rule's ttl
    const answer = JSON.stringify({ n: counts[k], sha: crypto.createHash('sha256').update(body).digest('hex'), len: body.length });
    // a slow origin, so concurrent requests overlap the fetch and must coalesce
    if (req.url.startsWith('/api/co')) setTimeout(() => res.end(answer), 300);
    else res.end(answer);
  });
  const cfg = tmpFile('rules.yaml', rules + extraYaml);
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg], { workers });
  const post = (path, body, headers = {}, method = 'POST') => get(proxy.port, path, {
    method, body, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers },
  });
  return {
    proxy, origin, counts, bodies, post,
    async close() { const r = await proxy.stop(); await origin.close(); assert.equal(r.code, 0); },
  };
}

const json = (r) => JSON.parse(r.body.toString());

test('POST by rule: same body hits, another body misses; JSON order and spaces do not matter', async () => {
  const t = await setup();
  const a = await t.post('/api/search', '{"q":"x","page":1}');
  assert.match(a.headers['cache-status'], /^idemcache; fwd=uri-miss; fwd-status=200; stored$/);
  const b = await t.post('/api/search', '{"q":"x","page":1}');
  assert.match(b.headers['cache-status'], /^idemcache; hit; ttl=\d+$/);
  assert.deepEqual(json(b), json(a));
  const c = await t.post('/api/search', '{ "page": 1,\n  "q": "x" }');
  assert.match(c.headers['cache-status'], /hit/, 'canonical JSON');
  assert.equal(t.counts['POST /api/search'], 1);
  // what reached the origin was the body as sent, never the normalized one
  assert.equal(t.bodies[0].toString(), '{"q":"x","page":1}');
  const d = await t.post('/api/search', '{"q":"y","page":1}');
  assert.match(d.headers['cache-status'], /fwd=uri-miss/);
  // Content-Type is in the key, and so is Accept (the rule's key_headers)
  const e = await t.post('/api/search', '{"q":"x","page":1}', { 'Content-Type': 'text/plain' });
  assert.match(e.headers['cache-status'], /fwd=uri-miss/);
  const f = await t.post('/api/search', '{"q":"x","page":1}', { Accept: 'text/csv' });
  assert.match(f.headers['cache-status'], /fwd=uri-miss/);
  const g = await t.post('/api/search?p=2', '{"q":"x","page":1}');
  assert.match(g.headers['cache-status'], /fwd=uri-miss/, 'the query string is in the key');
  assert.equal(t.counts['POST /api/search'], 5);
  await t.close();
});

test('Content-Length and chunked, any chunk sizes: one body, one key', async () => {
  const t = await setup();
  const body = '{"k":"' + 'v'.repeat(300) + '"}';
  await t.post('/api/chunks', body);
  const head = `POST /api/chunks HTTP/1.1\r\nHost: 127.0.0.1:${t.proxy.port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
  const sizes = [1, 7, 100, 1000];
  for (const size of sizes) {
    let framed = '';
    for (let i = 0; i < body.length; i += size) {
      const part = body.slice(i, i + size);
      framed += `${part.length.toString(16)}\r\n${part}\r\n`;
    }
    framed += '0\r\n\r\n';
    const r = await rawExchange(t.proxy.port, null, { chunks: [head, framed.slice(0, 50), framed.slice(50)], idleMs: 300 });
    const [res] = parseResponses(r.data);
    assert.equal(res.status, 200);
    assert.match(res.headers['cache-status'], /hit/, `chunks of ${size}`);
  }
  assert.equal(t.counts['POST /api/chunks'], 1);
  await t.close();
});

test('over body_key.max_bytes: forwarded whole and uncached, Cache-Status says why', async () => {
  const t = await setup();
  const big = JSON.stringify({ blob: 'z'.repeat(2000) });
  for (let i = 0; i < 2; i++) {
    const r = await t.post('/api/big', big);
    assert.match(r.headers['cache-status'], /^idemcache; fwd=bypass; detail=body-too-large$/);
    assert.equal(json(r).sha, crypto.createHash('sha256').update(big).digest('hex'));
  }
  // chunked, so the size is only known while reading
  const r = await get(t.proxy.port, '/api/big', { method: 'POST', body: big, headers: { 'Content-Type': 'application/json' } });
  assert.match(r.headers['cache-status'], /detail=body-too-large/);
  assert.equal(json(r).len, big.length);
  assert.equal(t.counts['POST /api/big'], 3);
  await t.close();
});

test('do-not-cache rule, naming convention, context header; a mutating POST invalidates', async () => {
  const t = await setup();
  for (let i = 0; i < 2; i++) {
    const w = await t.post('/api/write/item', '{}');
    assert.match(w.headers['cache-status'], /fwd=bypass; detail=rule/);
  }
  assert.equal(t.counts['POST /api/write/item'], 2);
  for (const p of ['/api/setUser', '/api/delete_item', '/api/AddOne', '/api/update']) {
    const r = await t.post(p, '{}');
    await t.post(p, '{}');
    assert.match(r.headers['cache-status'], /detail=naming/, p);
    assert.equal(t.counts[`POST ${p}`], 2, p);
  }
  await t.post('/api/settings', '{}');
  assert.match((await t.post('/api/settings', '{}')).headers['cache-status'], /hit/, '"settings" is no mutation');
  // /rpc/* is cached only with its context header
  const kind = { 'X-Request-Kind': 'query' };
  await t.post('/rpc/get', '{"id":1}', kind);
  assert.match((await t.post('/rpc/get', '{"id":1}', kind)).headers['cache-status'], /hit/);
  // the same URL without the header is an ordinary POST: it goes through and
  // invalidates what was stored for that URL, body-keyed entries included
  const plain = await t.post('/rpc/get', '{"id":2}');
  assert.match(plain.headers['cache-status'], /fwd=bypass; detail=no-rule/);
  const again = await t.post('/rpc/get', '{"id":1}', kind);
  assert.match(again.headers['cache-status'], /fwd=uri-miss/);
  assert.equal(t.counts['POST /rpc/get'], 3);
  await t.close();
});

test('Content-Digest is verified: a mismatch is 400 problem+json and reaches no origin', async () => {
  const t = await setup();
  const body = '{"a":1}';
  const good = `sha-256=:${crypto.createHash('sha256').update(body).digest('base64')}:`;
  const ok = await t.post('/api/d', body, { 'Content-Digest': good });
  assert.equal(ok.status, 200);
  const bad = await t.post('/api/d', '{"a":2}', { 'Content-Digest': good });
  assert.equal(bad.status, 400);
  assert.equal(bad.headers['content-type'], 'application/problem+json');
  const p = JSON.parse(bad.body.toString());
  assert.equal(p.status, 400);
  assert.equal(p.title, 'Content-Digest mismatch');
  const sha512 = `sha-512=:${crypto.createHash('sha512').update('{"a":3}').digest('base64')}:`;
  assert.equal((await t.post('/api/d', '{"a":3}', { 'Content-Digest': sha512 })).status, 200);
  const bad512 = await t.post('/api/d', '{"a":4}', { 'Content-Digest': sha512 });
  assert.equal(bad512.status, 400, 'a sha-512 that does not match is refused too');
  assert.equal(JSON.parse(bad512.body.toString()).title, 'Content-Digest mismatch');
  const junk = await t.post('/api/d', body, { 'Content-Digest': 'sha-256=:notbase64!:' });
  assert.equal(junk.status, 400);
  assert.equal(t.counts['POST /api/d'], 2);
  await t.close();
});

test('QUERY is cached by its content without any rule', async () => {
  const t = await setup();
  const q = (body) => t.post('/search', body, {}, 'QUERY');
  const a = await q('{"select":"*"}');
  assert.match(a.headers['cache-status'], /stored/);
  assert.match((await q('{"select":"*"}')).headers['cache-status'], /hit/);
  assert.match((await q('{"select":"id"}')).headers['cache-status'], /fwd=uri-miss/);
  assert.equal(t.counts['QUERY /search'], 2);
  // a GET of the same URL is another resource
  await get(t.proxy.port, '/search');
  assert.equal(t.counts['GET /search'], 1);
  await t.close();
});

// Node 20 has no zlib.zstdCompressSync: the zstd command (installed by
// scripts/deps.sh) makes the frame, so the zstd case always runs.
function zstdCompress(text) {
  if (zlib.zstdCompressSync) return zlib.zstdCompressSync(text);
  const r = spawnSync('zstd', ['-q', '-c'], { input: Buffer.from(text) });
  if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr}`);
  return r.stdout;
}

test('Content-Encoding is undone for the key; no-transform keys the raw bytes', async () => {
  const t = await setup();
  const body = '{"z":1,"a":[1,2,3]}';
  await t.post('/api/enc', body);
  for (const [coding, data] of [['gzip', zlib.gzipSync(body)], ['deflate', zlib.deflateSync(body)],
    ['zstd', zstdCompress(body)]]) {
    const r = await t.post('/api/enc', data, { 'Content-Encoding': coding });
    assert.match(r.headers['cache-status'], /hit/, coding);
  }
  const nt = await t.post('/api/enc', zlib.gzipSync(body), { 'Content-Encoding': 'gzip', 'Cache-Control': 'no-transform' });
  assert.match(nt.headers['cache-status'], /fwd=uri-miss/);
  // the origin got the compressed bytes as sent
  assert.equal(zlib.gunzipSync(t.bodies.at(-1)).toString(), body);
  // a broken gzip body is keyed by its raw bytes and still forwarded
  const broken = await t.post('/api/enc', Buffer.from('not gzip'), { 'Content-Encoding': 'gzip' });
  assert.equal(broken.status, 200);
  assert.equal(t.counts['POST /api/enc'], 3);
  assert.equal(t.bodies.at(-1).toString(), 'not gzip');
  const broken2 = await t.post('/api/enc', Buffer.from('not gzip'), { 'Content-Encoding': 'gzip' });
  assert.match(broken2.headers['cache-status'], /hit/, 'the same raw bytes: the same key');
  const other = await t.post('/api/enc', Buffer.from('not gzip!'), { 'Content-Encoding': 'gzip' });
  assert.match(other.headers['cache-status'], /fwd=uri-miss/, 'other raw bytes: another key');
  assert.equal(t.counts['POST /api/enc'], 4);
  await t.close();
});

test('Content-Encoding on two lines is one list, for the key as for the origin', async () => {
  const t = await setup();
  const body = '{"two":"lines"}';
  await t.post('/api/lines', zlib.gzipSync(body), { 'Content-Encoding': 'gzip' });
  // gzip applied twice, named on two lines: both are undone, same entry
  const twice = await t.post('/api/lines', zlib.gzipSync(zlib.gzipSync(body)), { 'Content-Encoding': ['gzip', 'gzip'] });
  assert.match(twice.headers['cache-status'], /hit/);
  // bytes that only the second line explains never share the first line's entry
  const opaque = Buffer.from('not gzip at all');
  const one = await t.post('/api/lines2', opaque, { 'Content-Encoding': 'gzip' });
  assert.match(one.headers['cache-status'], /fwd=uri-miss/);
  const two = await t.post('/api/lines2', opaque, { 'Content-Encoding': ['gzip', 'br'] });
  assert.match(two.headers['cache-status'], /fwd=uri-miss/, 'gzip, br is not gzip');
  assert.equal(t.counts['POST /api/lines2'], 2);
  await t.close();
});

test('Expect: 100-continue while the body is read for the key', async () => {
  const t = await setup();
  const body = '{"e":1}';
  const head = `POST /api/exp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`;
  for (let i = 0; i < 2; i++) {
    const r = await rawExchange(t.proxy.port, null, { chunks: [head, body], idleMs: 300 });
    const res = parseResponses(r.data);
    assert.equal(res[0].status, 100);
    assert.equal(res[1].status, 200);
    assert.equal(res.length, 2, 'one 100, not two');
  }
  assert.equal(t.counts['POST /api/exp'], 1);
  await t.close();
});

test('body-keyed entries: ETag and 304, coalescing, pipelining, origin freshness wins over ttl', async () => {
  const t = await setup('', 2);
  const a = await t.post('/api/etag', '{"x":1}');
  const hit = await t.post('/api/etag', '{"x":1}');
  assert.match(hit.headers.etag, /^"i-/);
  const nm = await t.post('/api/etag', '{"x":1}', { 'If-None-Match': hit.headers.etag });
  assert.equal(nm.status, 304);
  assert.equal(a.status, 200);
  // 50 concurrent identical POSTs: one reaches the origin
  const all = await Promise.all(Array.from({ length: 50 }, () => t.post('/api/co', '{"c":1}')));
  for (const r of all) assert.equal(json(r).n, 1);
  assert.equal(t.counts['POST /api/co'], 1);
  // two pipelined POSTs on one connection: a hit then a miss, answered in order
  const p = (b) => `POST /api/pipe HTTP/1.1\r\nHost: 127.0.0.1:${t.proxy.port}\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n${b}`;
  await t.post('/api/pipe', '{"p":1}');
  const r = await rawExchange(t.proxy.port, p('{"p":1}') + p('{"p":2}'), { idleMs: 300 });
  const res = parseResponses(r.data);
  assert.equal(res.length, 2);
  assert.match(res[0].headers['cache-status'], /hit/);
  assert.match(res[1].headers['cache-status'], /miss/);
  assert.equal(JSON.parse(res[1].body).sha, crypto.createHash('sha256').update('{"p":2}').digest('hex'));
  // no ttl and no freshness from the origin: not stored
  const cfgRule = await t.post('/nofresh', '{}', {}, 'QUERY');
  assert.match(cfgRule.headers['cache-status'], /detail=no-freshness/);
  assert.equal((await t.post('/nofresh', '{}', {}, 'QUERY')).body.toString(), 'n2', 'nothing was stored');
  // the origin's max-age=1 wins over the rule's ttl: 60s
  await t.post('/api/short', '{"s":1}');
  const shortHit = await t.post('/api/short', '{"s":1}');
  assert.match(shortHit.headers['cache-status'], /^idemcache; hit; ttl=[01]$/);
  await sleep(1100);
  const expired = await t.post('/api/short', '{"s":1}');
  assert.doesNotMatch(expired.headers['cache-status'], /hit/);
  assert.equal(json(expired).n, 2);
  await t.close();
});

test('cache.bypass_fields: the client goes around the cache; stale-if-error covers body keys', async () => {
  const t = await setup('cache:\n  bypass_fields: [X-Idem-Bypass]\n');
  await t.post('/api/by', '{"b":1}');
  const by = await t.post('/api/by', '{"b":1}', { 'X-Idem-Bypass': '1' });
  assert.match(by.headers['cache-status'], /fwd=bypass; detail=bypass-field/);
  assert.match((await t.post('/api/by', '{"b":1}')).headers['cache-status'], /hit/, 'an idempotent bypass does not invalidate');
  const g = await get(t.proxy.port, '/api/by', { headers: { 'x-idem-bypass': 'yes' } });
  assert.match(g.headers['cache-status'], /detail=bypass-field/);
  assert.equal(t.counts['POST /api/by'], 2);
  await t.close();
});

test('a stale body-keyed entry is served with Warning 111 when the origin fails', async () => {
  let down = false;
  const origin = await startOrigin((req, res) => {
    if (down) { res.statusCode = 503; res.end('down'); return; }
    res.setHeader('Cache-Control', 'max-age=1, stale-if-error=60');
    // Validators a GET would revalidate with: a POST must never use them.
    res.setHeader('ETag', '"v1"');
    res.setHeader('Last-Modified', new Date(Date.now() - 3600e3).toUTCString());
    res.end('kept');
  });
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', tmpFile('r.yaml', RULES)]);
  const post = () => get(proxy.port, '/api/s', { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json', 'Content-Length': 2 } });
  await post();
  await sleep(2100);
  down = true;
  const r = await post();
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'kept');
  assert.match(r.headers.warning, /^111 /);
  assert.match(r.headers['cache-status'], /fwd=stale; fwd-status=503/);
  assert.equal(origin.seen.length, 2);
  assert.equal(origin.seen.at(-1).method, 'POST');
  assert.equal(origin.seen.at(-1).headers['if-none-match'], undefined, 'never a conditional POST');
  assert.equal(origin.seen.at(-1).headers['if-modified-since'], undefined, 'never a conditional POST');
  assert.equal((await proxy.stop()).code, 0);
  await origin.close();
});

// Issue 10, finding 4: normalizing is work a client chooses, so it is
// bounded and opt-in. The attack: a 1 KB gzip QUERY inflating to ~1 MiB of
// [{},{},...], ~350k JSON values, every request a different body.
const QUERY_RULES = `
rules:
  - path: "/search*"
    methods: [QUERY]
    cache: true
    ttl: 60s
`;

const emptyObjects = (n, lead = '') => `${lead}[${'{},'.repeat(n - 1)}{}]`;

function procStatus(pid, field) {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

test('a QUERY gzip bomb of [{},{},...] is keyed by its raw bytes over normalize_max_bytes; memory stays bounded', async () => {
  const t = await setup('', 1, QUERY_RULES);
  try {
    const q = (body) => t.post('/search', body, { 'Content-Encoding': 'gzip' }, 'QUERY');
    const n = 349000; // 1,047,003 bytes once inflated: under body_key.max_bytes
    const a = zlib.gzipSync(emptyObjects(n), { level: 9 });
    assert.ok(a.length < 2048, `the attack body is small (${a.length} bytes)`);
    assert.match((await q(a)).headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/);
    assert.match((await q(a)).headers['cache-status'], /hit/, 'the same bytes are the same key');
    // the same JSON spelt with one more space: equal once canonical, but it
    // is over the limit, so it is not canonicalized and has its own entry
    const b = zlib.gzipSync(emptyObjects(n, ' '), { level: 9 });
    assert.match((await q(b)).headers['cache-status'], /fwd=uri-miss/);
    assert.equal(t.counts['QUERY /search'], 2);
    // 50 more, all different, so the per-worker memo cannot help
    for (let i = 1; i <= 50; i++) {
      const r = await q(zlib.gzipSync(emptyObjects(n - i), { level: 9 }));
      assert.equal(r.status, 200);
      assert.match(r.headers['cache-status'], /fwd=uri-miss/);
    }
    const pid = t.proxy.proc.pid;
    const rss = procStatus(pid, 'VmRSS');
    const peak = procStatus(pid, 'VmHWM');
    console.log(`after 52 bombs: VmRSS ${(rss / 1048576).toFixed(1)} MiB, VmHWM ${(peak / 1048576).toFixed(1)} MiB`);
    // Under ASan, shadow memory and the quarantine make RSS meaningless.
    if (!SANITIZED) {
      assert.ok(peak < 48 << 20, `peak RSS ${(peak / 1048576).toFixed(1)} MiB`);
      assert.ok(rss < 48 << 20, `RSS ${(rss / 1048576).toFixed(1)} MiB`);
    }
  } finally {
    await t.close();
  }
});

test('QUERY without a rule is keyed by its bytes as sent: normalizing is opt-in, as for POST', async () => {
  const t = await setup();
  try {
    const q = (body, headers = {}) => t.post('/search', body, headers, 'QUERY');
    assert.match((await q('{"a":1,"b":2}')).headers['cache-status'], /stored/);
    assert.match((await q('{"a":1,"b":2}')).headers['cache-status'], /hit/);
    assert.match((await q('{"b":2, "a":1}')).headers['cache-status'], /fwd=uri-miss/);
    // nor is its coding undone: the gzip bytes and their coding are the key
    const gz = zlib.gzipSync('{"a":1,"b":2}');
    assert.match((await q(gz, { 'Content-Encoding': 'gzip' })).headers['cache-status'], /fwd=uri-miss/);
    assert.match((await q(gz, { 'Content-Encoding': 'gzip' })).headers['cache-status'], /hit/);
    assert.equal(t.counts['QUERY /search'], 3);
  } finally {
    await t.close();
  }
});

// Issue 10, finding 11: jansson read numbers as doubles, so two amounts
// that differ past 17 digits shared one entry and one answer.
test('JSON numbers that differ beyond double precision have their own entries', async () => {
  const t = await setup();
  try {
    const a = await t.post('/api/pay', '{"amount":0.1}');
    assert.match(a.headers['cache-status'], /stored/);
    const b = await t.post('/api/pay', '{"amount":0.1000000000000000055511151231257827}');
    assert.match(b.headers['cache-status'], /fwd=uri-miss/);
    assert.equal(json(b).sha, crypto.createHash('sha256').update('{"amount":0.1000000000000000055511151231257827}').digest('hex'));
    for (const [x, y] of [['[9007199254740993]', '[9007199254740992]'], ['{"n":1.0}', '{"n":1}'], ['{"n":1e400}', '{"n":1e401}']]) {
      await t.post('/api/num', x);
      assert.match((await t.post('/api/num', y)).headers['cache-status'], /fwd=uri-miss/, `${x} and ${y}`);
    }
    // whitespace, key order and escapes are still canonical
    assert.match((await t.post('/api/pay', '{ "amount" : 0.1 }')).headers['cache-status'], /hit/);
    assert.match((await t.post('/api/pay', '{"\\u0061mount":0.1}')).headers['cache-status'], /hit/);
    assert.equal(t.counts['POST /api/pay'], 2);
  } finally {
    await t.close();
  }
});

// Each normalize limit at the limit (two spellings share an entry) and one
// past it (they do not; the body is still cached by its raw bytes).
test('body_key.normalize_max_bytes, _max_values and _max_depth at limit and limit + 1', async () => {
  const t = await setup(`body_key:
  max_bytes: 1MiB
  normalize_max_bytes: 64
  normalize_max_values: 10
  normalize_max_depth: 4
`, 1, QUERY_RULES);
  try {
    const q = (path, body) => t.post(path, body, {}, 'QUERY');
    const pair = async (path, x, y) => {
      assert.match((await q(path, x)).headers['cache-status'], /stored/, x);
      return (await q(path, y)).headers['cache-status'];
    };
    const obj = (pad) => [`{"b":1,"a":"${'x'.repeat(pad)}"}`, `{"a":"${'x'.repeat(pad)}","b":1}`];
    const [x64, y64] = obj(64 - 14);
    assert.equal(Buffer.byteLength(x64), 64);
    assert.match(await pair('/search/bytes', x64, y64), /hit/);
    const [x65, y65] = obj(65 - 14);
    assert.match(await pair('/search/bytes', x65, y65), /fwd=uri-miss/);
    assert.match((await q('/search/bytes', x65)).headers['cache-status'], /hit/, 'still cached, by its bytes');
    // 10 values: an array and 9 numbers
    assert.match(await pair('/search/values', '[1,2,3,4,5,6,7,8,9]', '[1, 2,3,4,5,6,7,8,9]'), /hit/);
    assert.match(await pair('/search/values', '[1,2,3,4,5,6,7,8,9,0]', '[1, 2,3,4,5,6,7,8,9,0]'), /fwd=uri-miss/);
    assert.match(await pair('/search/depth', '[[[[1]]]]', '[ [[[1]]]]'), /hit/);
    assert.match(await pair('/search/depth', '[[[[[1]]]]]', '[ [[[[1]]]]]'), /fwd=uri-miss/);
  } finally {
    await t.close();
  }
});

test('deep nesting, long numbers and a zstd frame asking for a huge window: keyed raw, never a crash', async () => {
  const t = await setup('body_key:\n  max_bytes: 1MiB\n', 1, QUERY_RULES);
  try {
    const q = (body, headers = {}) => t.post('/search', body, headers, 'QUERY');
    for (const body of ['['.repeat(60000), '['.repeat(30000) + ']'.repeat(30000),
      '{"a":'.repeat(12000) + '1' + '}'.repeat(12000), `[${'9'.repeat(60000)}]`]) {
      const r = await q(body);
      assert.equal(r.status, 200);
      assert.equal(json(r).len, body.length);
      assert.match((await q(body)).headers['cache-status'], /hit/);
    }
    // A zstd frame made by hand (RFC 8878 §3.1.1): no content size, a
    // window of 2^(10 + exponent), one raw block. Decoded in one shot into
    // the output, the window costs nothing, so even 128 MiB decodes.
    const zstdFrame = (exponent, content) => Buffer.concat([
      Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, exponent << 3]),
      Buffer.from([(content.length << 3) | 1, 0, 0]), // last block, raw
      Buffer.from(content)]);
    assert.match((await q('{"w":1}')).headers['cache-status'], /stored/);
    const small = await q(zstdFrame(0, '{"w":1}'), { 'Content-Encoding': 'zstd' });
    assert.match(small.headers['cache-status'], /hit/, 'a 1 KiB window is decoded and shares the entry');
    const huge = await q(zstdFrame(17, '{"w":1}'), { 'Content-Encoding': 'zstd' });
    assert.equal(huge.status, 200);
    assert.match(huge.headers['cache-status'], /hit/, 'a 128 MiB window decodes too, into the output alone');
    const garbage = await q(Buffer.concat([zstdFrame(0, '{"w":1}'), Buffer.from('xx')]), { 'Content-Encoding': 'zstd' });
    assert.match(garbage.headers['cache-status'], /fwd=uri-miss/, 'trailing bytes: keyed raw');
  } finally {
    await t.close();
  }
});

// Issue 10, re-attack B: a body read ahead to key it lies in the client
// buffer whole. Chunked and over 256 KiB (the upstream write high water),
// its last chunk stayed behind once the first write fit the socket: no
// read came to announce it, the origin waited for the end of the body and
// the client got 504 after upstream_first_byte (2 s here, so the old code
// fails fast). Content-Length and a warm pooled connection are covered too.
test('a chunked body over 256 KiB read ahead to key it reaches the origin whole (fresh pool, warm pool, Content-Length)', async () => {
  const got = [];
  const origin = await startOrigin((req, res, body) => {
    got.push({ url: req.url, body });
    // X-Close: the origin closes, so the next request finds no pooled connection
    if (req.headers['x-close']) res.setHeader('Connection', 'close');
    res.end(`${body.length} ${crypto.createHash('sha256').update(body).digest('hex')}`);
  });
  const cfg = tmpFile('big.yaml', `timeouts:\n  upstream_first_byte: 2s\nrules:\n  - { path: "/api/*", methods: [POST], cache: true, ttl: 60s }\n`);
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  try {
    // Send bytes and read one response framed by Content-Length (a guard
    // timer only stops a hung case from stalling the run).
    const exchange = (bytes) => new Promise((resolve) => {
      const s = net.connect(proxy.port, '127.0.0.1', () => s.write(bytes));
      let buf = Buffer.alloc(0);
      const done = () => { clearTimeout(guard); s.destroy(); resolve(buf.length ? parseResponses(buf)[0] : { status: 0 }); };
      const guard = setTimeout(done, 15000);
      s.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        const m = end >= 0 && /content-length: (\d+)/i.exec(buf.subarray(0, end).toString('latin1'));
        if (m && buf.length >= end + 4 + Number(m[1])) done();
      });
      s.on('error', done);
      s.on('end', done);
    });
    const chunked = (n, size) => {
      const body = crypto.randomBytes(n / 2).toString('hex');
      let wire = '';
      for (let i = 0; i < n; i += size) wire += `${Math.min(size, n - i).toString(16)}\r\n${body.slice(i, i + size)}\r\n`;
      return { body, wire: `Transfer-Encoding: chunked\r\n\r\n${wire}0\r\n\r\n` };
    };
    const length = (n) => {
      const body = crypto.randomBytes(n / 2).toString('hex');
      return { body, wire: `Content-Length: ${n}\r\n\r\n${body}` };
    };
    const cases = [
      ['QUERY', '/search', 'X-Close: 1\r\n', chunked(300000, 300000), 'chunked, one chunk, fresh pool'],
      ['QUERY', '/search', 'X-Close: 1\r\n', chunked(262200, 262200), 'chunked just over 256 KiB, fresh pool'],
      ['QUERY', '/search', 'X-Close: 1\r\n', chunked(300000, 65536), 'chunked in 64 KiB chunks, fresh pool'],
      ['POST', '/api/big', 'X-Close: 1\r\n', chunked(300000, 300000), 'POST under a caching rule, fresh pool'],
      ['QUERY', '/search', 'X-Close: 1\r\n', length(300000), 'Content-Length, fresh pool'],
      ['QUERY', '/search', '', chunked(300000, 300000), 'chunked, warms the pool'],
      ['QUERY', '/search', '', chunked(300000, 300000), 'chunked, warm pool'],
    ];
    for (const [method, path, extra, { body, wire }, what] of cases) {
      const before = got.length;
      const r = await exchange(`${method} ${path} HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n${extra}${wire}`);
      assert.equal(r.status, 200, what);
      assert.equal(got.length, before + 1, what);
      assert.equal(got[before].body.toString(), body, `${what}: the origin got the whole body`);
      assert.equal(r.body.toString(), `${body.length} ${crypto.createHash('sha256').update(body).digest('hex')}`, what);
    }
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

test('a body read ahead to key it goes to the origin from memory: whole, with its length, and the request behind it next', async () => {
  const origin = await startOrigin((req, res, body) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.end(`${req.method} ${req.url} ${body.length}`);
  });
  const cfg = tmpFile('inline.yaml', `rules:\n  - { path: "/api/*", methods: [POST], cache: true, ttl: 60s }\n`);
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  try {
    const body = '{"k":"' + 'w'.repeat(3000) + '"}';
    let framed = '';
    for (let i = 0; i < body.length; i += 700) framed += `${Math.min(700, body.length - i).toString(16)}\r\n${body.slice(i, i + 700)}\r\n`;
    framed += '0\r\n\r\n';
    const chunkedHead = 'POST /api/inline-chunked HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
    const lengthHead = `POST /api/inline-length HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const next = 'GET /after HTTP/1.1\r\nHost: h\r\n\r\n';
    // the body arrives over several reads (CS_COLLECT), the next request with its end
    const r = await rawExchange(proxy.port, null, {
      chunks: [chunkedHead, framed.slice(0, 1000), framed.slice(1000) + lengthHead + body.slice(0, 1500),
        body.slice(1500) + next],
      idleMs: 500,
    });
    const rs = parseResponses(r.data);
    assert.deepEqual(rs.map((x) => x.status), [200, 200, 200]);
    assert.equal(rs[0].body.toString(), `POST /api/inline-chunked ${body.length}`);
    assert.equal(rs[1].body.toString(), `POST /api/inline-length ${body.length}`);
    assert.equal(rs[2].body.toString(), 'GET /after 0');
    assert.deepEqual(origin.seen.map((s) => s.url), ['/api/inline-chunked', '/api/inline-length', '/after']);
    for (const s of origin.seen.slice(0, 2)) {
      assert.equal(s.body.toString(), body, `${s.url}: the body whole`);
      assert.equal(s.headers['content-length'], String(body.length), `${s.url}: sent with its length`);
      assert.equal(s.headers['transfer-encoding'], undefined, `${s.url}: not re-chunked`);
    }
    assert.ok(!r.closed, 'the connection stays open');
  } finally {
    await proxy.stop();
    await origin.close();
  }
});
