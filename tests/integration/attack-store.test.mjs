// Attacks on the store's memory accounting (store_mem.c: objects in use
// stay charged, SIEVE passes over them, replaced ones are retired, an
// insert with no room is refused) across HTTP/1.1 and HTTP/2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, get, tmpFile, freePort } from './lib.mjs';

async function cacheWithAdmin(t, handler, yaml) {
  const origin = await startOrigin(handler);
  t.after(() => origin.close());
  const adminPort = await freePort();
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${adminPort}`,
    '--config', tmpFile('c.yaml', yaml)]);
  t.after(async () => {
    const r = await proxy.stop();
    assert.equal(r.code, 0, 'exits cleanly');
  });
  const stats = async () => JSON.parse((await get(adminPort, '/stats')).body);
  return { origin, proxy, stats };
}

// Finding 1: the exchange that revalidates a stale object holds it
// (ex->stale) while the refreshed one is inserted, so the store retired
// the old one as in use and charged its body twice: once retired, once in
// the refreshed object that shares it (a 304, RFC 9111 §4.3.4) or that
// replaces it (a 200). An object over half a shard could then never be
// refreshed: the insert was refused, the stale one was already dropped,
// and the next request was a full miss (1 MiB shards, a 600 KiB object:
// fwd=uri-miss on every other request, /stats refused 1 per refresh).
for (const kind of ['304', '200']) {
  test(`finding 1: a stale object over half a shard is refreshed by a ${kind} and stays stored`, { timeout: 30000 }, async (t) => {
    const OBJ = 600 * 1024;
    let version = 0;
    const { proxy, stats } = await cacheWithAdmin(t, (req, res) => {
      const etag = `"v${version}"`;
      if (kind === '304' && req.headers['if-none-match'] === etag) {
        res.writeHead(304, { 'Cache-Control': 'max-age=0', ETag: etag });
        res.end();
        return;
      }
      if (kind === '200') version++;
      res.writeHead(200, { 'Cache-Control': 'max-age=0', ETag: `"v${version}"`, 'Content-Length': String(OBJ) });
      res.end(Buffer.alloc(OBJ, 0x61 + (version % 26)));
    }, 'cache:\n  memory_size: 16MiB\n  max_object_size: 1MiB\n');
    const first = await get(proxy.port, '/big');
    assert.equal(first.status, 200);
    assert.match(first.headers['cache-status'], /fwd=uri-miss; fwd-status=200; stored/);
    for (let i = 0; i < 3; i++) {
      const r = await get(proxy.port, '/big');
      assert.equal(r.status, 200);
      assert.equal(r.body.length, OBJ);
      // max-age=0 with a validator: every request revalidates what is stored
      assert.match(r.headers['cache-status'], new RegExp(`fwd=stale; fwd-status=${kind}`), `request ${i + 2}`);
    }
    const s = await stats();
    assert.equal(s.refused, 0, JSON.stringify(s));
    assert.equal(s.objects, 1, JSON.stringify(s));
  });
}
