// Via through a forward + reverse pair (issue 14). RFC 9110 §7.6.3: each
// intermediary appends its own entry, so a response through the pair
// lists two hops, the reverse side's first. The entry's pseudonym is the
// cache.name each side has (as in Cache-Status): named apart, the two hops
// read as two, on a miss, on a response revalidated through the peer (304)
// and on one refreshed in the background; no side ever names itself twice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, startRelay, rawExchange, parseResponses, tmpFile, sleep } from './lib.mjs';

const SECRET = tmpFile('peer-via.secret', 'a-long-shared-secret-for-the-tests\n');

// Every Via line of a raw response head, as one list in order.
function vias(data) {
  const head = data.subarray(0, data.indexOf('\r\n\r\n')).toString('latin1');
  return head.split('\r\n').filter((l) => /^via:/i.test(l))
    .flatMap((l) => l.slice(l.indexOf(':') + 1).split(',').map((e) => e.trim()));
}

async function pair({ forwardName, reverseName }) {
  const origin = await startOrigin((req, res) => {
    res.setHeader('ETag', '"v1"');
    res.setHeader('Cache-Control', req.url.startsWith('/swr') ? 'max-age=1, stale-while-revalidate=30' : 'max-age=0');
    if (req.headers['if-none-match'] === '"v1"') { res.statusCode = 304; res.end(); return; }
    res.end(`doc ${req.url}`);
  });
  const reverseCfg = tmpFile('via-reverse.yaml', `cache:\n  name: ${reverseName}\npeers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`);
  const reverse = await startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`]);
  const link = await startRelay(reverse.port);
  const forwardCfg = tmpFile('via-forward.yaml', `cache:\n  name: ${forwardName}\n`);
  const forward = await startProxy(['--mode', 'forward', '--config', forwardCfg, '--peer', `http://127.0.0.1:${link.port}`,
    '--peer-id', 'edge-1', '--peer-secret', SECRET]);
  return {
    origin, link, forwardPort: forward.port,
    get: async (path, extra = '') => (await rawExchange(forward.port,
      `GET http://origin.test${path} HTTP/1.1\r\nHost: origin.test\r\n${extra}Connection: close\r\n\r\n`, { idleMs: 500 })).data,
    async close() {
      for (const p of [forward, reverse]) assert.equal((await p.stop()).code, 0);
      await link.close();
      await origin.close();
    },
  };
}

test('Via through a peer pair: each hop once, by its cache.name, on a miss, a revalidation through the peer and a background refresh', async () => {
  const t = await pair({ forwardName: 'edge', reverseName: 'shield' });
  try {
    const both = ['1.1 shield', '1.1 edge'];
    const miss = await t.get('/doc');
    assert.equal(parseResponses(miss)[0].status, 200);
    assert.deepEqual(vias(miss), both, 'the reverse side, then the forward side');
    // max-age=0: each is revalidated through the peer (a 304 from the origin)
    for (let i = 0; i < 2; i++) {
      t.link.reset();
      const again = await t.get('/doc');
      assert.match(parseResponses(again)[0].headers['cache-status'], /^edge; fwd=stale; fwd-status=304/);
      assert.deepEqual(vias(again), both, `refreshed ${i + 1}`);
    }
    // a conditional client gets our 304 with the same hops
    const cond = await t.get('/doc', 'If-None-Match: "v1"\r\n');
    assert.equal(parseResponses(cond)[0].status, 304);
    assert.deepEqual(vias(cond), both);
    // stale-while-revalidate: served stale, refreshed by the forward side's
    // internal request through the peer, then served from the refreshed entry
    assert.deepEqual(vias(await t.get('/swr')), both);
    await sleep(1100);
    const stale = await t.get('/swr');
    assert.match(parseResponses(stale)[0].headers['cache-status'], /detail=stale-while-revalidate/);
    assert.deepEqual(vias(stale), both);
    await sleep(200);
    assert.deepEqual(vias(await t.get('/swr')), both, 'after the background refresh');
    // toward the origin, the other way round: the forward side, then the reverse side
    for (const s of t.origin.seen) assert.equal(s.headers.via, '1.1 edge, 1.1 shield', `${s.method} ${s.url}`);
    // an HTTP/1.0 client's request is named as received: 1.0 (received-protocol)
    const old = (await rawExchange(t.forwardPort, 'GET http://origin.test/old HTTP/1.0\r\nHost: origin.test\r\n\r\n', { idleMs: 500 })).data;
    assert.equal(parseResponses(old)[0].status, 200);
    assert.equal(t.origin.seen.at(-1).headers.via, '1.0 edge, 1.1 shield');
  } finally {
    await t.close();
  }
});

test('Via: a cache.name a pseudonym cannot carry (":" or "/") is sent as idemcache', async () => {
  const t = await pair({ forwardName: 'edge/1', reverseName: 'shield:2' });
  try {
    assert.deepEqual(vias(await t.get('/doc')), ['1.1 idemcache', '1.1 idemcache']);
    assert.equal(t.origin.seen[0].headers.via, '1.1 idemcache, 1.1 idemcache');
  } finally {
    await t.close();
  }
});
