// HTTP/2 details left by issue 15's closing note, each against the real
// binary: empty cookie crumbs (RFC 9113 §8.2.3), one stalled request body
// on a shared connection (timeouts.client_body_idle), request trailers
// (RFC 9110 §6.5, RFC 9113 §8.1), skipped stream ids (§5.1.1) and the
// Rapid Reset GOAWAY's code (§7, CVE-2023-44487).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, tmpFile, get } from './lib.mjs';
import { T, F, E, frame, request, block, status, connect, goaway, rstOn, headersOn, errorCode } from './h2-frames.mjs';

async function setup(t, handler, yaml = '') {
  const origin = await startOrigin(handler);
  const args = ['--upstream', `http://127.0.0.1:${origin.port}`];
  if (yaml) args.push('--config', tmpFile('h2-small.yaml', yaml));
  const p = await startProxy(args);
  t.after(async () => {
    const r = await p.stop();
    await origin.close();
    assert.equal(r.code, 0, 'exits cleanly');
  });
  return { p, origin };
}

// The DATA bytes the server sent on one stream so far.
const dataOn = (c, stream) =>
  Buffer.concat(c.frames.filter((f) => f.type === T.DATA && f.stream === stream).map((f) => f.payload)).toString();
const endOn = (stream) => (f) => (f.type === T.DATA || f.type === T.HEADERS) && f.stream === stream && (f.flags & F.END_STREAM);

test('empty cookie crumbs: an entry stored with Vary: Cookie over h1 is a hit over h2 with an extra empty crumb', async (t) => {
  const { p, origin } = await setup(t, (req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    res.setHeader('Vary', 'Cookie');
    res.end(`cookie [${req.headers.cookie}]`);
  });
  const first = await get(p.port, '/crumbs', { headers: { Cookie: 'a=1' } });
  assert.equal(first.status, 200);
  assert.equal(first.body.toString(), 'cookie [a=1]');
  const c = await connect(p.port);
  t.after(() => c.close());
  // RFC 9113 §8.2.3: "a=1" and "" joined are "a=1", not "a=1; "
  const authority = `127.0.0.1:${p.port}`; // the h1 request's Host: the same key
  c.send(request(1, { path: '/crumbs', authority, extra: [['cookie', 'a=1'], ['cookie', '']] }));
  c.send(request(3, { path: '/crumbs', authority, extra: [['cookie', ''], ['cookie', 'a=1'], ['cookie', '']] }));
  for (const id of [1, 3]) {
    const h = await c.waitFor(headersOn(id));
    assert.equal(status(h.payload), 200);
    assert.ok(await c.waitFor(endOn(id)));
    assert.equal(dataOn(c, id), 'cookie [a=1]', `stream ${id}: the stored variant`);
  }
  assert.equal(origin.seen.filter((s) => s.url === '/crumbs').length, 1, 'both h2 requests were hits');
  // and what goes upstream carries no empty crumb either
  c.send(request(5, { path: '/crumbs-up', extra: [['cookie', 'b=2'], ['cookie', '']] }));
  assert.ok(await c.waitFor(endOn(5)));
  assert.equal(origin.seen.find((s) => s.url === '/crumbs-up').headers.cookie, 'b=2');
});
