// The scheme in cache keys (issue 14): http://a/x and https://a/x are two
// entries; PURGE of a path removes both, an absolute-form PURGE one scheme;
// invalidation stays same-origin (RFC 9111 §4.4: same scheme and authority).
// And the forwarding fields: Forwarded proto= and X-Forwarded-Proto say the
// scheme the client used, never what the client claims.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, rawExchange, parseResponses, get, freePort, tmpFile, sleep } from './lib.mjs';

async function logged(proxy, re) {
  for (let i = 0; i < 250 && !re.test(proxy.errors()); i++) await sleep(20);
  assert.match(proxy.errors(), re);
}

// A reverse proxy with an admin listener in front of an origin that counts
// requests per method and path and sends fresh answers.
async function reverse(t, yaml = '', extra = []) {
  const counts = {};
  const origin = await startOrigin((req, res) => {
    const k = `${req.method} ${req.url}`;
    counts[k] = (counts[k] || 0) + 1;
    res.setHeader('Cache-Control', 'max-age=60');
    if (req.headers['x-location']) res.setHeader('Location', req.headers['x-location']);
    res.end(`${k} #${counts[k]}`);
  });
  const admin = await freePort();
  const args = ['--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${admin}`, ...extra];
  if (yaml) args.push('--config', tmpFile('s.yaml', yaml));
  const proxy = await startProxy(args);
  t.after(async () => { await proxy.stop(); await origin.close(); });
  return { origin, proxy, admin, counts };
}

const status = (r) => r.headers['cache-status'];

test('an absolute-form PURGE https://host/path leaves the http entry; PURGE of the path removes it', async (t) => {
  const s = await reverse(t);
  const host = `127.0.0.1:${s.proxy.port}`;
  await get(s.proxy.port, '/p?x=1');
  assert.match(status(await get(s.proxy.port, '/p?x=1')), /; hit/);
  // the https URL names another entry, which does not exist
  const other = await get(s.admin, `https://${host}/p?x=1`, { method: 'PURGE' });
  assert.equal(other.status, 404);
  assert.deepEqual(JSON.parse(other.body), { purged: 0, key: `https://${host}/p?x=1` });
  await logged(s.proxy, new RegExp(`admin: PURGE key https://${host.replace(/\./g, '\\.')}/p\\?x=1: 0 purged`));
  assert.match(status(await get(s.proxy.port, '/p?x=1')), /; hit/, 'the http entry is still there');
  // origin-form: the operator purges the URL, both schemes: "//host/path"
  const both = await get(s.admin, '/p?x=1', { method: 'PURGE', headers: { Host: host } });
  assert.equal(both.status, 200);
  assert.deepEqual(JSON.parse(both.body), { purged: 1, key: `//${host}/p?x=1` });
  await logged(s.proxy, new RegExp(`admin: PURGE key //${host.replace(/\./g, '\\.')}/p\\?x=1: 1 purged`));
  assert.match(status(await get(s.proxy.port, '/p?x=1')), /fwd=uri-miss/);
});

test('https default port: PURGE https://host:443/p is keyed https://host/p', async (t) => {
  const s = await reverse(t);
  const r = await get(s.admin, 'https://Example.COM:443/p', { method: 'PURGE' });
  assert.deepEqual(JSON.parse(r.body), { purged: 0, key: 'https://example.com/p' });
  const h = await get(s.admin, 'http://Example.COM:443/p', { method: 'PURGE' });
  assert.deepEqual(JSON.parse(h.body), { purged: 0, key: 'http://example.com:443/p' });
});

test('a reverse proxy keys an absolute-form https target by its transport (cleartext: http)', async (t) => {
  // The origin is told http (X-Forwarded-Proto, Forwarded proto=): its
  // answer must not fill the https entry.
  const s = await reverse(t);
  const host = `127.0.0.1:${s.proxy.port}`;
  await get(s.proxy.port, '/abs');
  const { data } = await rawExchange(s.proxy.port, `GET https://${host}/abs HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const [r] = parseResponses(data);
  assert.equal(r.status, 200);
  assert.match(r.headers['cache-status'], /; hit/);
  assert.equal(s.counts['GET /abs'], 1);
  const p = await get(s.admin, `https://${host}/abs`, { method: 'PURGE' });
  assert.equal(JSON.parse(p.body).purged, 0, 'no https entry was made');
});

test('invalidation is same-origin: a Location with the other scheme leaves the entry', async (t) => {
  const s = await reverse(t);
  const host = `127.0.0.1:${s.proxy.port}`;
  await get(s.proxy.port, '/b');
  assert.match(status(await get(s.proxy.port, '/b')), /; hit/);
  await get(s.proxy.port, '/a', { method: 'POST', body: 'x', headers: { 'X-Location': `https://${host}/b` } });
  assert.match(status(await get(s.proxy.port, '/b')), /; hit/, 'https://host/b is another origin');
  await get(s.proxy.port, '/a', { method: 'POST', body: 'x', headers: { 'X-Location': `HTTP://${host}/b` } });
  assert.match(status(await get(s.proxy.port, '/b')), /fwd=uri-miss/, 'http://host/b is ours');
  assert.equal(s.counts['GET /b'], 2);
});

test('a forward proxy never answers https://a/x from the http://a/x entry', async (t) => {
  const origin = await startOrigin((req, res) => { res.setHeader('Cache-Control', 'max-age=60'); res.end('plain'); });
  t.after(() => origin.close());
  const p = await startProxy(['--mode', 'forward', '--config', tmpFile('f.yaml', 'forward:\n  allow_private: true\n')]);
  t.after(() => p.stop());
  const ask = async (scheme) => {
    const { data } = await rawExchange(p.port, `GET ${scheme}://127.0.0.1:${origin.port}/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    return parseResponses(data)[0];
  };
  assert.equal((await ask('http')).status, 200);
  assert.match((await ask('http')).headers['cache-status'], /; hit/);
  // an https target is not ours to fetch (501, use CONNECT), and never a hit
  const s = await ask('https');
  assert.equal(s.status, 501);
  assert.doesNotMatch(s.headers['cache-status'] ?? '', /hit/);
});

// ---- forwarding fields ---------------------------------------------------

async function seenBy(t, yaml, requestHead) {
  const origin = await startOrigin((req, res) => res.end('ok'));
  t.after(() => origin.close());
  const args = ['--upstream', `http://127.0.0.1:${origin.port}`];
  if (yaml) args.push('--config', tmpFile('f.yaml', yaml));
  const proxy = await startProxy(args);
  t.after(() => proxy.stop());
  const { data } = await rawExchange(proxy.port, requestHead);
  assert.equal(parseResponses(data)[0].status, 200);
  return origin.seen[0];
}

test('cleartext: Forwarded proto=http and X-Forwarded-Proto: http; a spoofed X-Forwarded-Proto is replaced', async (t) => {
  const seen = await seenBy(t, 'proxy:\n  forwarded: true\n',
    'GET /f HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nx-forwarded-proto: https, https\r\nForwarded: proto=https\r\nConnection: close\r\n\r\n');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.rawHeaders.filter((h) => /^x-forwarded-proto$/i.test(h)).length, 1, 'one X-Forwarded-Proto, ours');
  // Forwarded is a list: the client's element stays, ours is the last (RFC 7239 §4)
  assert.equal(seen.headers.forwarded, 'proto=https, for=127.0.0.1;proto=http');
});

test('proxy.x_forwarded_proto: false sends none, and still drops the client\'s', async (t) => {
  const seen = await seenBy(t, 'proxy:\n  x_forwarded_proto: false\n',
    'GET /f HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n');
  assert.equal(seen.headers['x-forwarded-proto'], undefined);
});
