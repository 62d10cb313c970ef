// Attacks on the shared cache (issue 10, findings 2, 7 and 8), each run
// against the real binary and a real origin: one user's response must never
// reach another, and one request must never stall a worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, get, tmpFile, sleep, rawExchange, parseResponses } from './lib.mjs';

// routes: path -> (req, count) => { status, headers, body }
async function setup(routes, extra = []) {
  const counts = {};
  const origin = await startOrigin(async (req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    counts[p] = (counts[p] || 0) + 1;
    const r = await (routes[p] || (() => ({ status: 404, body: 'nope' })))(req, counts[p]);
    res.statusCode = r.status || 200;
    for (const [k, v] of Object.entries(r.headers || {})) res.setHeader(k, v);
    res.end(r.body ?? '');
  });
  let proxy;
  try {
    proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, ...extra]);
  } catch (e) {
    await origin.close();
    throw e;
  }
  return {
    proxy, origin, counts,
    get: (path, opts) => get(proxy.port, path, opts),
    async close() {
      // A worker stuck in a blocking call never drains: do not wait for it forever.
      const killer = setTimeout(() => proxy.proc.kill('SIGKILL'), 10000);
      try {
        const r = await proxy.stop();
        assert.equal(r.code, 0);
      } finally {
        clearTimeout(killer);
        await origin.close();
      }
    },
  };
}

// Who the origin is talking to: the `user` cookie of the request.
const userOf = (req) => /user=(\w+)/.exec(req.headers.cookie || '')?.[1] || 'nobody';
const A = { Cookie: 'user=alice' };
const B = { Cookie: 'user=bob' };

// Ask until `done(response)` says the background refresh has landed (it runs
// after the stale answer goes out); bounded, so a refresh that never lands
// fails the test instead of hanging it.
async function until(t, path, headers, done) {
  let r;
  for (let i = 0; i < 100; i++) {
    r = await t.get(path, { headers });
    if (done(r)) return r;
    await sleep(30);
  }
  return r;
}

test('304 with Set-Cookie: the revalidating user gets the cookie, the next user never does', async (tt) => {
  const t = await setup({
    '/s': (req) => (req.headers['if-none-match'] === '"e1"'
      ? { status: 304, headers: { 'Cache-Control': 'max-age=60', ETag: '"e1"', 'Set-Cookie': `session=${userOf(req)}` } }
      : { headers: { 'Cache-Control': 'max-age=0', ETag: '"e1"' }, body: 'shared page' }),
  });
  tt.after(() => t.close());
  await t.get('/s', { headers: A });
  const a = await t.get('/s', { headers: A }); // stale: revalidated, the 304 refreshes alice's session
  assert.equal(t.counts['/s'], 2);
  assert.match(a.headers['cache-status'], /fwd=stale; fwd-status=304/);
  assert.deepEqual(a.headers['set-cookie'], ['session=alice'], 'relayed to the client that revalidated');
  assert.equal(a.body.toString(), 'shared page');
  const b = await t.get('/s', { headers: B });
  assert.match(b.headers['cache-status'], /; hit; /, 'the merge itself is stored');
  assert.equal(b.headers['set-cookie'], undefined, "alice's session must not reach bob");
  assert.equal(t.counts['/s'], 2);
});

for (const cc of ['private, max-age=60', 'no-store, max-age=60']) {
  test(`304 with Cache-Control: ${cc}: the merged response is not shared, the entry goes`, async (tt) => {
    const t = await setup({
      '/p': (req) => (req.headers['if-none-match'] === '"e1"'
        ? { status: 304, headers: { 'Cache-Control': cc, ETag: '"e1"' } }
        : { headers: { 'Cache-Control': 'max-age=0', ETag: '"e1"' }, body: `for ${userOf(req)}` }),
    });
    tt.after(() => t.close());
    await t.get('/p', { headers: A });
    const a = await t.get('/p', { headers: A });
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), 'for alice');
    const b = await t.get('/p', { headers: B });
    assert.doesNotMatch(b.headers['cache-status'], /; hit/, 'the merge must not answer bob');
    assert.equal(b.body.toString(), 'for bob');
    assert.equal(t.counts['/p'], 3);
    assert.match(a.headers['cache-status'], new RegExp(`fwd=stale; fwd-status=304; ttl=-?\\d+; detail=${cc.split(',')[0]}$`));
  });
}

test('stale-while-revalidate: a background 304 with Set-Cookie or private is never stored for everyone', async (tt) => {
  const swr = { 'Cache-Control': 'max-age=0, stale-while-revalidate=60', ETag: '"e1"' };
  const t = await setup({
    '/bc': (req) => (req.headers['if-none-match'] === '"e1"'
      ? { status: 304, headers: { 'Cache-Control': 'max-age=60', ETag: '"e1"', 'Set-Cookie': `session=${userOf(req)}` } }
      : { headers: swr, body: 'page' }),
    '/bp': (req) => (req.headers['if-none-match'] === '"e1"'
      ? { status: 304, headers: { 'Cache-Control': 'private, max-age=60', ETag: '"e1"' } }
      : { headers: swr, body: `for ${userOf(req)}` }),
  });
  tt.after(() => t.close());
  for (const p of ['/bc', '/bp']) {
    await t.get(p, { headers: A });
    const a = await t.get(p, { headers: A }); // stale at once; alice's refresh runs behind it
    assert.match(a.headers['cache-status'], /detail=stale-while-revalidate/, p);
  }
  // /bc: once the refresh landed the entry is fresh, and carries no cookie
  const bc = await until(t, '/bc', B, (r) => /; hit; ttl=\d+$/.test(r.headers['cache-status']));
  assert.match(bc.headers['cache-status'], /; hit; ttl=\d+$/);
  assert.equal(bc.headers['set-cookie'], undefined, "alice's session must not reach bob");
  assert.equal(t.counts['/bc'], 2);
  // /bp: the refresh said private, so the entry went; bob gets his own page
  const bp = await until(t, '/bp', B, (r) => !/stale-while-revalidate/.test(r.headers['cache-status']));
  assert.doesNotMatch(bp.headers['cache-status'], /; hit/);
  assert.equal(bp.body.toString(), 'for bob');
});

// A Vary line of about 3 KB whose last member is Cookie.
const longVary = Array.from({ length: 260 }, (_, i) => `X-Pad-${String(i).padStart(4, '0')}`).join(', ') + ', Cookie';

test('Vary: a 3 KB Vary line ending in Cookie keeps Cookie in the variant key', async (tt) => {
  assert.ok(longVary.length > 3000);
  const t = await setup({
    '/v': (req) => ({ headers: { 'Cache-Control': 'max-age=60', Vary: longVary }, body: `for ${userOf(req)}` }),
  });
  tt.after(() => t.close());
  const a1 = await t.get('/v', { headers: A });
  assert.match(a1.headers['cache-status'], /; stored/);
  const b = await t.get('/v', { headers: B });
  assert.equal(b.body.toString(), 'for bob', "alice's variant must not answer bob");
  assert.match(b.headers['cache-status'], /fwd=vary-miss/);
  const a2 = await t.get('/v', { headers: A });
  assert.equal(a2.body.toString(), 'for alice');
  assert.match(a2.headers['cache-status'], /; hit/);
  assert.equal(t.counts['/v'], 2);
});

test('Vary: a line that cannot be read (unterminated quote, not a field name) is never stored, as Vary: *', async (tt) => {
  const t = await setup({
    '/q': (req) => ({ headers: { 'Cache-Control': 'max-age=60', Vary: 'Accept, "x, Cookie' }, body: `for ${userOf(req)}` }),
    '/n': (req) => ({ headers: { 'Cache-Control': 'max-age=60', Vary: 'Accept, Cookie;q=1' }, body: `for ${userOf(req)}` }),
  });
  tt.after(() => t.close());
  for (const p of ['/q', '/n']) {
    const a = await t.get(p, { headers: A });
    const b = await t.get(p, { headers: B });
    assert.equal(b.body.toString(), 'for bob', p);
    assert.equal(t.counts[p], 2, p);
    assert.match(a.headers['cache-status'], /detail=vary-invalid/, p);
  }
});

test('stale-while-revalidate: a huge request head on a stale entry does not stall the worker', async (tt) => {
  // Over the ~208 KiB a socketpair buffers: the handover to the internal
  // request must not wait for a reader on the same thread.
  const cfg = tmpFile('c.yaml', 'limits:\n  header_section: 2097152\n');
  const t = await setup({
    '/h': () => ({ headers: { 'Cache-Control': 'max-age=0, stale-while-revalidate=600' }, body: 'stale but fine' }),
    '/other': () => ({ headers: { 'Cache-Control': 'max-age=60' }, body: 'other' }),
  }, ['--config', cfg]);
  tt.after(() => t.close());
  const small = (path) => rawExchange(t.proxy.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, { idleMs: 5000 });
  assert.equal(parseResponses((await small('/h')).data)[0]?.status, 200);
  const big = Array.from({ length: 8 }, (_, i) => `X-Big-${i}: ${'b'.repeat(100 * 1024)}\r\n`).join('');
  const head = `GET /h HTTP/1.1\r\nHost: x\r\n${big}Connection: close\r\n\r\n`;
  assert.ok(head.length > 800 * 1024);
  const r = await rawExchange(t.proxy.port, head);
  const [res] = parseResponses(r.data);
  assert.equal(res?.status, 200);
  assert.match(res.headers['cache-status'], /detail=stale-while-revalidate/);
  // The worker (there is one) still answers.
  const [other] = parseResponses((await small('/other')).data);
  assert.equal(other?.status, 200, 'the worker is stuck');
  assert.equal(other.body.toString(), 'other');
  assert.equal(parseResponses((await small('/h')).data)[0]?.status, 200);
});

// Found by the re-attack of issue 10: an unterminated quote in the origin's
// Cache-Control hid the private (or no-store) after it, and alice's
// private response was served to bob.
test('Cache-Control cut short by an unterminated quote is never stored: it may hide private or no-store', async (tt) => {
  const t = await setup({
    '/p': (req) => ({ headers: { 'Cache-Control': 'max-age=60, ext="unterminated, private' }, body: `private data of ${userOf(req)}` }),
    '/s': (req) => ({ headers: { 'Cache-Control': 'max-age=60, ext="x, no-store' }, body: `private data of ${userOf(req)}` }),
  });
  tt.after(() => t.close());
  for (const p of ['/p', '/s']) {
    const a = await t.get(p, { headers: A });
    assert.match(a.headers['cache-status'], /detail=cache-control-invalid/, p);
    const b = await t.get(p, { headers: B });
    assert.equal(b.body.toString(), 'private data of bob', p);
    assert.equal(t.counts[p], 2, p);
  }
});
