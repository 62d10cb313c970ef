// Answers that say what happened (issue 12, part 4): Cache-Status details,
// the reason of a bad request, the log lines an operator reads, log
// reopening, Surrogate-Key delivery and PURGE's answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import http from 'node:http';
import { ROOT, tmpFile, startProxy, startOrigin, startRelay, get, rawExchange, parseResponses, sleep, freePort } from './lib.mjs';

const SECRET = tmpFile('peer.secret', 'a-long-shared-secret-for-the-tests\n');

const RULES = `rules:
  - path: "/api/*"
    methods: [POST]
    cache: true
    ttl: 60s
`;

// stderr reaches the test through a pipe: wait for a line rather than race it
async function logged(proxy, re) {
  for (let i = 0; i < 250 && !re.test(proxy.errors()); i++) await sleep(20);
  assert.match(proxy.errors(), re);
}

async function setup(yaml = RULES, extra = []) {
  const origin = await startOrigin((req, res, body) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.setHeader('Content-Type', req.headers['content-type'] || 'text/plain');
    res.end(req.method === 'HEAD' ? undefined : `${req.method} ${req.url} ${body}`);
  });
  const cfg = tmpFile('c.yaml', yaml);
  const proxy = await startProxy(['--config', cfg, '--upstream', `http://127.0.0.1:${origin.port}`, ...extra]);
  return { origin, proxy, async close() { await proxy.stop(); await origin.close(); } };
}

test('Cache-Status names the reason: no-rule, side-effects, head, method', async (t) => {
  const s = await setup();
  t.after(() => s.close());
  const cs = (r) => r.headers['cache-status'];
  // a POST no rule allows
  assert.match(cs(await get(s.proxy.port, '/other', { method: 'POST', body: '{}' })), /fwd=bypass; detail=no-rule/);
  // a POST a rule allows is cached
  await get(s.proxy.port, '/api/x', { method: 'POST', body: '{}' });
  assert.match(cs(await get(s.proxy.port, '/api/x', { method: 'POST', body: '{}' })), /; hit/);
  // a Connect unary call whose procedure is not marked NO_SIDE_EFFECTS
  const rpc = await get(s.proxy.port, '/acme.v1.Users/Get', {
    method: 'POST', body: '{"id":1}', headers: { 'Content-Type': 'application/json', 'Connect-Protocol-Version': '1' },
  });
  assert.match(cs(rpc), /fwd=bypass; detail=side-effects/);
  // a HEAD miss is not stored, and says so
  const head = await get(s.proxy.port, '/h', { method: 'HEAD' });
  assert.match(cs(head), /fwd=uri-miss; fwd-status=200; detail=head/);
  // another method
  assert.match(cs(await get(s.proxy.port, '/d', { method: 'DELETE' })), /fwd=bypass; detail=method/);
});

test('README lists every Cache-Status detail the code can send', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Reading Cache-Status'));
  const found = new Set();
  for (const f of ['src/server/cache_stage.c', 'src/server/body_key.c', 'src/server/peer_stage.c']) {
    const src = fs.readFileSync(path.join(ROOT, f), 'utf8');
    for (const m of src.matchAll(/cache_detail\s*=\s*(?:[^;"]*\?\s*)?"([a-z-]+)"(?:\s*:\s*"([a-z-]+)")?/g)) {
      found.add(m[1]);
      if (m[2]) found.add(m[2]);
    }
    for (const m of src.matchAll(/hit_status\([^)]*"([a-z-]+)"\)/g)) found.add(m[1]);
  }
  const policy = fs.readFileSync(path.join(ROOT, 'src/cache/policy.c'), 'utf8');
  for (const m of policy.matchAll(/\[STORE_(?!OK)\w+\] = "([a-z-]+)"/g)) found.add(m[1]);
  for (const d of ['no-rule', 'side-effects', 'head', 'too-large']) assert.ok(found.has(d), `scan found ${d}`);
  for (const d of found) assert.ok(section.includes(`| \`${d}\` |`), `README's Cache-Status section lists detail ${d}`);
});

test('a bad request gets its reason in the body and in the error log', async (t) => {
  const s = await setup('');
  t.after(() => s.close());
  const cases = [
    ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'Content-Length with Transfer-Encoding'],
    ['GET / HTTP/1.1\r\n\r\n', 400, 'missing Host'],
    ['GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n', 400, 'obs-fold'],
    ['GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400, 'whitespace before a colon'],
    ['GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505, 'HTTP major version other than 1'],
    ['GET / HTTP/1.1\r\nHost: a\r\nExpect: later\r\n\r\n', 417, 'Expect other than 100-continue'],
    ['CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', 405, 'CONNECT sent to a reverse proxy'],
  ];
  for (const [bytes, status, why] of cases) {
    const { data } = await rawExchange(s.proxy.port, bytes);
    const [r] = parseResponses(data);
    assert.equal(r.status, status, why);
    assert.match(r.body.toString(), new RegExp(`^${status} [A-Za-z ]+: ${why.replace(/[.()/]/g, '\\$&')}\\n$`));
    const esc = why.replace(/[.()/]/g, '\\$&');
    await logged(s.proxy, new RegExp(`client 127\\.0\\.0\\.1: ${status} [A-Za-z ]+: ${esc}\n`));
  }
  assert.equal(s.origin.seen.length, 0);
});

test('README words every parser refusal', () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const errors = readme.slice(readme.indexOf('## Errors idemcache answers itself'), readme.indexOf('## Limits and exit codes'));
  const src = fs.readFileSync(path.join(ROOT, 'src/http/parse.c'), 'utf8');
  const texts = [...src.matchAll(/\[HTTP_ERR_(?!NONE)\w+\] = "([^"]+)"/g)].map((m) => m[1]);
  assert.ok(texts.length >= 25);
  for (const t of texts) assert.ok(errors.includes(`"${t}"`), `README Errors table lists "${t}"`);
});

test('SIGUSR1 reopens the log files: after a rename, new lines go to a new file', async (t) => {
  const origin = await startOrigin((req, res) => res.end('ok'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-rot-'));
  const access = path.join(dir, 'access.log');
  const error = path.join(dir, 'error.log');
  const cfg = tmpFile('r.yaml', `log:\n  access: ${access}\n  error: ${error}\n`);
  const p = await startProxy(['--config', cfg, '--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await p.stop(); await origin.close(); });
  await get(p.port, '/before');
  // the line is written as the response ends, maybe after the client has it
  for (let i = 0; i < 200 && !(fs.existsSync(access) && fs.readFileSync(access, 'utf8').includes('/before')); i++) await sleep(20);
  fs.renameSync(access, `${access}.1`);
  fs.renameSync(error, `${error}.1`);
  p.proc.kill('SIGUSR1');
  for (let i = 0; i < 200 && !(fs.existsSync(error) && fs.readFileSync(error, 'utf8').includes('SIGUSR1: log files reopened')); i++) await sleep(20);
  await get(p.port, '/after');
  for (let i = 0; i < 200 && !(fs.existsSync(access) && fs.readFileSync(access, 'utf8').includes('/after')); i++) await sleep(20);
  const rotated = fs.readFileSync(`${access}.1`, 'utf8');
  const fresh = fs.readFileSync(access, 'utf8');
  assert.match(rotated, /"target":"\/before"/);
  assert.doesNotMatch(rotated, /\/after/);
  assert.match(fresh, /"target":"\/after"/);
  assert.doesNotMatch(fresh, /\/before/);
  assert.match(fs.readFileSync(error, 'utf8'), /\[info\] SIGUSR1: log files reopened/);
  assert.match(fs.readFileSync(`${error}.1`, 'utf8'), /\[info\] listener 127\.0\.0\.1:/);
});

test('PURGE accepts absolute-form; its answer and log line name the key looked up', async (t) => {
  const admin = await freePort();
  const s = await setup('', ['--admin', `127.0.0.1:${admin}`]);
  t.after(() => s.close());
  const host = `127.0.0.1:${s.proxy.port}`;
  await get(s.proxy.port, '/p?x=1');
  assert.match((await get(s.proxy.port, '/p?x=1')).headers['cache-status'], /; hit/);
  // absolute-form, with the admin listener's own Host
  const { data } = await rawExchange(admin, `PURGE http://${host}/p?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${admin}\r\nConnection: close\r\n\r\n`);
  const [r] = parseResponses(data);
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { purged: 1, key: `http://${host}/p?x=1` });
  await logged(s.proxy, new RegExp(`admin: PURGE key http://${host.replace(/\./g, '\\.')}/p\\?x=1: 1 purged`));
  assert.match((await get(s.proxy.port, '/p?x=1')).headers['cache-status'], /fwd=uri-miss/);
  // a miss names the key it missed, with the default port dropped as the key does
  const miss = await get(admin, 'http://Example.COM:80/nothing', { method: 'PURGE' });
  assert.equal(miss.status, 404);
  assert.deepEqual(JSON.parse(miss.body), { purged: 0, key: 'http://example.com/nothing' });
  await logged(s.proxy, /admin: PURGE key http:\/\/example\.com\/nothing: 0 purged/);
});

// An origin that tags its responses for purging.
async function taggedSetup(yaml = '', extra = []) {
  const admin = await freePort();
  const origin = await startOrigin((req, res) => {
    const body = `body of ${req.url}`;
    // two Surrogate-Key lines with another field between them
    res.writeHead(200, ['Cache-Control', 'max-age=60', 'Surrogate-Key', 'user-7 list', 'X-Between', 'kept',
      'surrogate-key', 'more', 'Content-Length', String(body.length)]);
    res.end(body);
  });
  const cfg = tmpFile('sk.yaml', yaml);
  const proxy = await startProxy(['--config', cfg, '--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${admin}`, ...extra]);
  return { admin, origin, proxy, async close() { await proxy.stop(); await origin.close(); } };
}

test('Surrogate-Key is stripped before delivery by default, still used by PURGE', async (t) => {
  const s = await taggedSetup();
  t.after(() => s.close());
  const miss = await get(s.proxy.port, '/sk');
  assert.match(miss.headers['cache-status'], /stored/);
  assert.equal(miss.headers['surrogate-key'], undefined, 'a miss does not show it');
  assert.equal(miss.headers['x-between'], 'kept');
  const hit = await get(s.proxy.port, '/sk');
  assert.match(hit.headers['cache-status'], /; hit/);
  assert.equal(hit.headers['surrogate-key'], undefined, 'a hit does not show it');
  assert.equal(hit.headers['x-between'], 'kept', 'a field between two Surrogate-Key lines stays');
  assert.equal(hit.body.toString(), 'body of /sk');
  // raw bytes: no trace of it, and the head is well formed
  const { data } = await rawExchange(s.proxy.port, 'GET /sk HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.doesNotMatch(data.toString('latin1'), /surrogate-key/i);
  // a range of the stored body (206) leaves it out too
  const range = await rawExchange(s.proxy.port, 'GET /sk HTTP/1.1\r\nHost: a\r\nRange: bytes=0-3\r\nConnection: close\r\n\r\n');
  const [r206] = parseResponses(range.data);
  assert.equal(r206.status, 206);
  assert.equal(r206.body.toString(), 'body');
  assert.equal(r206.headers['x-between'], 'kept');
  assert.doesNotMatch(range.data.toString('latin1'), /surrogate-key/i);
  // the stored copy keeps it for PURGE by surrogate key
  const p = await get(s.admin, '/', { method: 'PURGE', headers: { 'Surrogate-Key': 'more' } });
  assert.deepEqual(JSON.parse(p.body), { purged: 2, surrogate_key: 'more' }, 'two hosts, two entries, both tagged by the second line');
});

test('proxy.pass_surrogate_key: true lets clients see Surrogate-Key', async (t) => {
  const s = await taggedSetup('proxy:\n  pass_surrogate_key: true\n');
  t.after(() => s.close());
  assert.equal((await get(s.proxy.port, '/sk')).headers['surrogate-key'], 'user-7 list, more');
  assert.equal((await get(s.proxy.port, '/sk')).headers['surrogate-key'], 'user-7 list, more');
});

test('a verified peer still receives Surrogate-Key; the clients of either idemcache do not', async (t) => {
  const s = await taggedSetup(`peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`);
  const link = await startRelay(s.proxy.port);
  const forward = await startProxy(['--mode', 'forward', '--peer', `http://127.0.0.1:${link.port}`,
    '--peer-id', 'edge-1', '--peer-secret', SECRET]);
  t.after(async () => { await forward.stop(); await link.close(); await s.close(); });
  const r = await get(forward.port, 'http://origin.test/peer');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'body of /peer');
  assert.equal(r.headers['surrogate-key'], undefined, "the forward idemcache's client does not see it");
  const down = link.bytes().down.toString('latin1');
  assert.match(down, /\r\nSurrogate-Key: user-7 list\r\n/, 'the verified peer received it');
  assert.match(down, /\r\nsurrogate-key: more\r\n/);
  const again = await get(forward.port, 'http://origin.test/peer');
  assert.equal(again.headers['surrogate-key'], undefined);
  // a HEAD is no body for the handshake to code: it crosses as a plain answer
  link.reset();
  const head = await get(forward.port, 'http://origin.test/peer-head', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['surrogate-key'], undefined);
  assert.match(link.bytes().down.toString('latin1'), /\r\nSurrogate-Key: user-7 list\r\n/, 'the peer received it on a HEAD too');
  // an ordinary client of the reverse idemcache does not see it either
  assert.equal((await get(s.proxy.port, '/peer', { headers: { Host: 'origin.test' } })).headers['surrogate-key'], undefined);
});

test('log.level: debug logs each request\'s cache decision: key hash, rule, verdict, upstream connection', async (t) => {
  const s = await setup(`${RULES}log:\n  level: debug\n`);
  t.after(() => s.close());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  await get(s.proxy.port, '/d1', { agent });
  await get(s.proxy.port, '/d1', { agent });
  await get(s.proxy.port, '/api/q', { method: 'POST', body: '{}', agent });
  await get(s.proxy.port, '/other', { method: 'POST', body: '{}', agent });
  await logged(s.proxy, /POST \/other: /);
  const lines = s.proxy.errors().split('\n').filter((l) => l.includes('[debug]'));
  const miss = lines.find((l) => l.includes('GET /d1:'));
  assert.match(miss, /\[debug\] GET \/d1: key [0-9a-f]{16}, rule none, cache fwd=uri-miss stored, status 200, upstream new connection$/);
  const hit = lines.filter((l) => l.includes('GET /d1:'))[1];
  assert.match(hit, /key [0-9a-f]{16}, rule none, cache hit, status 200, upstream not contacted$/);
  assert.equal(hit.match(/key (\w+)/)[1], miss.match(/key (\w+)/)[1], 'the same key hash for the same URL');
  assert.match(lines.find((l) => l.includes('POST /api/q:')), /rule 1, cache fwd=uri-miss stored, status 200, upstream reused connection$/);
  assert.match(lines.find((l) => l.includes('POST /other:')), /rule none, cache fwd=bypass detail=no-rule, status 200, upstream reused connection$/);
});

test('log.level info logs no per-request decision', async (t) => {
  const s = await setup();
  t.after(() => s.close());
  await get(s.proxy.port, '/i');
  await s.proxy.stop();
  assert.doesNotMatch(s.proxy.errors(), /\[debug\]/);
});
