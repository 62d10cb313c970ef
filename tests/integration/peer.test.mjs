// The digest handshake (issue 6): client -> forward idemcache -> link (a
// byte-counting relay) -> reverse idemcache -> origin, all real sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { BIN, startProxy, startOrigin, startRawOrigin, startRelay, rawExchange, parseResponses, get, sleep, tmpFile, freePort } from './lib.mjs';

const SECRET = tmpFile('peer.secret', 'a-long-shared-secret-for-the-tests\n');
const ORIGIN = 'http://origin.test';

// A 20 KiB JSON document; `edits` changes two fields of it.
function doc(edits = 0) {
  const items = Array.from({ length: 300 }, (_, i) => ({ id: i, name: `item number ${i}`, price: (i * 37) % 1000, tags: ['a', 'b', `t${i % 7}`] }));
  const d = { version: 1 + edits, updated: edits ? '2026-11-26T10:00:00Z' : '2026-11-25T10:00:00Z', items };
  return JSON.stringify(d);
}

async function topology({ reverseArgs = [], forwardYaml = '' } = {}) {
  const state = { edits: 0, seen: [] };
  const origin = await startOrigin((req, res, body) => {
    state.seen.push({ method: req.method, url: req.url, headers: req.headers, body });
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'max-age=0'); // revalidated every time
    res.end(req.method === 'POST' ? doc(state.edits) + crypto.createHash('sha256').update(body).digest('hex') : doc(state.edits));
  });
  const reverseCfg = tmpFile('reverse.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`);
  const startReverse = (port) => startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`, ...reverseArgs], { port });
  let reverse = await startReverse();
  const link = await startRelay(reverse.port);
  const forwardCfg = tmpFile('forward.yaml', `rules:\n  - { path: "/api/*", methods: [POST], cache: true }\n${forwardYaml}`);
  const adminPort = await freePort();
  const forward = await startProxy(['--mode', 'forward', '--config', forwardCfg, '--peer', `http://127.0.0.1:${link.port}`,
    '--peer-id', 'edge-1', '--peer-secret', SECRET, '--admin', `127.0.0.1:${adminPort}`]);
  const t = {
    state, origin, link, forward,
    async forwardStats() { return JSON.parse((await get(adminPort, '/stats')).body); },
    get reverse() { return reverse; },
    get: (path, opts) => get(forward.port, `${ORIGIN}${path}`, opts),
    post: (path, body, headers = {}) => get(forward.port, `${ORIGIN}${path}`, { method: 'POST', body, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers } }),
    async restartReverse() {
      // same port: the link reconnects to the new process, with a new epoch
      const port = reverse.port;
      await reverse.stop();
      reverse = await startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`, ...reverseArgs], { port });
    },
    async close() {
      for (const p of [forward, reverse]) assert.equal((await p.stop()).code, 0);
      await link.close();
      await origin.close();
    },
  };
  return t;
}

// The Content-Encoding of the one message that crossed the link `dir`
// since the last reset ('' when none): what the handshake chose, read off
// the wire rather than guessed from a byte count.
function linkCoding(link, dir) {
  const bytes = link.bytes()[dir];
  const end = bytes.indexOf('\r\n\r\n');
  assert.ok(end > 0, `a message crossed the link ${dir}`);
  const head = bytes.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n').filter((l) => /^content-encoding:/i.test(l));
  return lines.map((l) => l.slice(l.indexOf(':') + 1).trim()).join(', ');
}

test('an identical response crosses the link as a reference; a changed one as dcz', async () => {
  const t = await topology();
  const first = await t.get('/doc');
  assert.equal(first.body.toString(), doc(0));
  assert.ok(t.link.counts.down > 20000, 'the first response crosses whole');
  for (let i = 0; i < 3; i++) {
    t.link.reset();
    const r = await t.get('/doc');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), doc(0), 'byte for byte what the origin sent');
    assert.ok(t.link.counts.down < 1000, `reference: ${t.link.counts.down} bytes came back`);
    assert.equal(linkCoding(t.link, 'down'), 'idem-ref', 'an unchanged body comes back as a reference');
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers['idem-digest'], undefined, 'clients never see the handshake');
  }
  t.state.edits = 1;
  t.link.reset();
  const changed = await t.get('/doc');
  assert.equal(changed.body.toString(), doc(1));
  assert.ok(t.link.counts.down < 1500, `dcz: ${t.link.counts.down} bytes for a 20 KiB body with two fields changed`);
  assert.equal(linkCoding(t.link, 'down'), 'dcz', 'a changed body comes back as dcz against the stored one');
  // the origin saw none of it
  for (const s of t.state.seen) {
    assert.equal(s.headers['available-dictionary'], undefined);
    assert.ok(!Object.keys(s.headers).some((k) => k.startsWith('idem-')));
    assert.ok(!/idem-ref|dcz/.test(s.headers['accept-encoding'] || ''));
  }
  assert.equal(t.state.seen.length, 5, 'max-age=0: every request reached the origin');
  await t.close();
});

test('a repeated request body crosses the link as a reference; the origin gets it whole', async () => {
  const t = await topology();
  const body = JSON.stringify({ query: 'orders', filter: 'x'.repeat(2000) });
  const sha = crypto.createHash('sha256').update(body).digest('hex');
  const a = await t.post('/api/search', body);
  assert.ok(a.body.toString().endsWith(sha));
  for (let i = 0; i < 3; i++) {
    t.link.reset();
    const r = await t.post('/api/search', body);
    assert.equal(r.status, 200);
    assert.ok(r.body.toString().endsWith(sha), 'the origin got the body byte for byte');
    assert.ok(t.link.counts.up < 1200, `reference: ${t.link.counts.up} bytes went up for a 2 KiB body`);
    assert.equal(linkCoding(t.link, 'up'), 'idem-ref', 'a repeated body goes up as a reference');
    assert.ok(t.link.counts.down < 1200, `and ${t.link.counts.down} came down`);
  }
  for (const s of t.state.seen) {
    assert.equal(s.body.toString(), body);
    assert.equal(s.headers['content-encoding'], undefined);
  }
  await t.close();
});

test('a restarted reverse side: references are refused once (415), resent whole, no client error', async () => {
  const t = await topology();
  const body = JSON.stringify({ q: 'y'.repeat(2000) });
  await t.post('/api/r', body);
  await t.post('/api/r', body);
  await t.get('/doc');
  await t.restartReverse();
  t.link.reset();
  const r = await t.post('/api/r', body);
  assert.equal(r.status, 200);
  assert.equal(t.state.seen.at(-1).body.toString(), body);
  // on the link: the reference, its 415, then the body whole
  const down = parseResponses(t.link.bytes().down);
  assert.deepEqual(down.map((x) => x.status), [415, 200]);
  assert.equal((await t.forwardStats()).peer_fallbacks, 1, 'one fallback, counted');
  const g = await t.get('/doc');
  assert.equal(g.status, 200);
  assert.equal(g.body.toString(), doc(0));
  // and references work again against the new store
  await t.post('/api/r', body);
  t.link.reset();
  await t.post('/api/r', body);
  assert.ok(t.link.counts.up < 1200);
  await t.close();
});

test('only verified peers get peer treatment; clients cannot inject the handshake', async () => {
  const t = await topology();
  // straight to the reverse side, with a forged signature: 401
  // a current timestamp, so it is the HMAC (not the clock) that refuses it
  const now = Math.floor(Date.now() / 1000);
  const forged = await get(t.reverse.port, '/doc', { headers: { 'Idem-Peer': `id=edge-1, ts=${now}, sig=${Buffer.alloc(32, 7).toString('base64')}` } });
  assert.equal(forged.status, 401);
  const stale = await get(t.reverse.port, '/doc', { headers: { 'Idem-Peer': 'id=edge-1, ts=1, sig=AAAA' } });
  assert.equal(stale.status, 401);
  const unknown = await get(t.reverse.port, '/doc', { headers: { 'Idem-Peer': `id=nobody, ts=${Math.floor(Date.now() / 1000)}, sig=x` } });
  assert.equal(unknown.status, 401);
  // an ordinary client of the reverse side: Available-Dictionary and Idem-* never reach the origin
  await get(t.reverse.port, '/doc', { headers: { 'Available-Dictionary': ':AAAA:', 'Accept-Encoding': 'idem-ref, dcz', 'Idem-Store': 'x' } });
  const seen = t.state.seen.at(-1);
  assert.equal(seen.headers['available-dictionary'], undefined);
  assert.equal(seen.headers['idem-store'], undefined);
  // a client of the forward side cannot pass its own handshake fields along
  await t.get('/doc', { headers: { 'Idem-Peer': 'id=evil, ts=1, sig=x', 'Available-Dictionary': ':AAAA:' } });
  assert.equal(t.state.seen.at(-1).headers['idem-peer'], undefined);
  // nor the handshake's coding: a body it calls a reference is refused
  const n = t.state.seen.length;
  const ref = await t.post('/api/x', '{}', { 'Content-Encoding': 'idem-ref' });
  assert.equal(ref.status, 415);
  assert.equal(t.state.seen.length, n, 'nothing reached the origin');
  await t.close();
});

test('a wrong secret is refused, and the forward side says so', async () => {
  const origin = await startOrigin((req, res) => res.end('x'));
  const reverse = await startProxy(['--config', tmpFile('r.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`), '--upstream', `http://127.0.0.1:${origin.port}`]);
  const other = tmpFile('other.secret', 'another-secret-entirely-different');
  const forward = await startProxy(['--mode', 'forward', '--peer', `http://127.0.0.1:${reverse.port}`, '--peer-id', 'edge-1', '--peer-secret', other]);
  const r = await get(forward.port, `${ORIGIN}/x`);
  assert.equal(r.status, 401);
  assert.match(forward.errors(), /refused our signature/);
  for (const p of [forward, reverse]) assert.equal((await p.stop()).code, 0);
  await origin.close();
});

// A relay that changes one byte: "every body is checked" (README). The
// answer is a refusal, never the changed body.
test('a response body changed on the link is refused by the forward side, never passed on', async () => {
  const t = await topology();
  t.link.tamper('down', 'item number 150', 'item numbeX 150');
  const r = await t.get('/doc');
  assert.equal(t.link.tampered.down, 1, 'the link changed a byte');
  assert.equal(r.status, 502);
  assert.ok(!r.body.toString().includes('numbeX'), 'the changed body never reaches the client');
  // nothing was stored from it: the next request gets the real document
  const again = await t.get('/doc');
  assert.equal(again.status, 200);
  assert.equal(again.body.toString(), doc(0));
  await t.close();
});

test('a request body changed on the link is refused by the reverse side and reaches no origin', async () => {
  const t = await topology();
  const body = JSON.stringify({ query: 'orders', filter: 'x'.repeat(2000) });
  t.link.tamper('up', '"query":"orders"', '"query":"ordexs"');
  const r = await t.post('/api/tampered', body);
  assert.equal(t.link.tampered.up, 1, 'the link changed a byte');
  assert.notEqual(r.status, 200);
  assert.ok(r.status >= 400, `refused: ${r.status}`);
  assert.ok(!t.state.seen.some((s) => s.body.toString().includes('ordexs')), 'the changed body reached no origin');
  await t.close();
});

// ---- issue 10, finding 1: forward/reverse desync through Content-Encoding ----

// A raw origin that answers every request head it reads, in order, one
// response per request (no request bodies reach it in these tests). A
// request for /poison is answered late, as a slow endpoint would be.
async function startSmuggleOrigin() {
  const seen = [];
  const origin = await startRawOrigin((s) => {
    let buf = Buffer.alloc(0);
    let queue = Promise.resolve();
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        const need = end + 4 + (cl ? Number(cl[1]) : 0);
        if (buf.length < need) return;
        buf = buf.subarray(need);
        const [method, target] = head.split('\r\n')[0].split(' ');
        const path = target.replace(/^http:\/\/[^/]*/, '');
        seen.push({ method: method.length > 16 ? `${method.slice(0, 8)}...(${method.length})` : method, path });
        const body = path === '/poison' ? 'POISONED' : `fresh ${path}`;
        queue = queue.then(async () => {
          if (path === '/poison') await sleep(300);
          s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=300\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        });
      }
    });
  });
  origin.seen = seen;
  return origin;
}

async function smuggleTopology(reverseYaml = '') {
  const origin = await startSmuggleOrigin();
  const procs = [];
  const cleanup = async () => {
    for (const p of procs.reverse()) await p.stop();
    await origin.close();
  };
  try {
    const reverseCfg = tmpFile('reverse.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n${reverseYaml}`);
    const reverse = await startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`]);
    procs.push(reverse);
    const forwardCfg = tmpFile('forward.yaml', 'rules:\n  - { path: "/api/*", methods: [POST], cache: true }\n');
    const forward = await startProxy(['--mode', 'forward', '--config', forwardCfg, '--peer', `http://127.0.0.1:${reverse.port}`,
      '--peer-id', 'edge-1', '--peer-secret', SECRET]);
    procs.push(forward);
    return { origin, reverse, forward, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

const SECRET_BYTES = Buffer.from('a-long-shared-secret-for-the-tests');

// What a verified forward side sends: Idem-Peer signed over method, target,
// ts, a fresh nonce (16 random bytes, base64url) and digest.
function peerFields(method, target, digest = '') {
  const ts = Math.floor(Date.now() / 1000);
  const nonce = crypto.randomBytes(16).toString('base64url');
  const sig = crypto.createHmac('sha256', SECRET_BYTES).update(`edge-1\nhttp\n${method}\n${target}\n${ts}\n${nonce}\n${digest}`).digest('base64');
  return `Idem-Peer: id=edge-1, scheme=http, ts=${ts}, nonce=${nonce}, sig=${sig}\r\n` + (digest ? `Idem-Digest: ${digest}\r\n` : '');
}
const digestOf = (body) => `sha-256=:${crypto.createHash('sha256').update(body).digest('base64')}:`;

test('smuggling through "x, idem-ref: the attacker gets 400, the next user gets their own response', async () => {
  const t = await smuggleTopology();
  try {
    // The body is a request for /poison behind a run of tchars: wherever the
    // reverse side would have stopped reading, the rest parses as a request.
    const body = 'X'.repeat(6000) + ' /poison HTTP/1.1\r\nHost: origin.test\r\n\r\n';
    const attack = await get(t.forward.port, `${ORIGIN}/api/x`, {
      method: 'POST', body,
      headers: { 'Content-Type': 'application/json', 'Content-Encoding': '"x, idem-ref', 'Content-Length': Buffer.byteLength(body) },
    });
    const victim = await get(t.forward.port, `${ORIGIN}/victim`);
    const later = await get(t.forward.port, `${ORIGIN}/victim`);
    assert.equal(victim.body.toString(), 'fresh /victim', 'the next user gets the response to their own request');
    assert.equal(later.body.toString(), 'fresh /victim', 'and nothing else is stored under their URL');
    assert.equal(attack.status, 400, 'a Content-Encoding with an unterminated quote is malformed');
    await sleep(400); // a late smuggled response, if any, would have reached the origin log by now
    assert.ok(!t.origin.seen.some((s) => s.path === '/poison'), `no smuggled request reached the origin: ${JSON.stringify(t.origin.seen)}`);
  } finally {
    await t.cleanup();
  }
});

test('a client cannot send idem-ref or dcz in any spelling, position or field line; malformed codings are 400', async () => {
  const t = await smuggleTopology();
  try {
    const post = (ce) => get(t.forward.port, `${ORIGIN}/api/y`, {
      method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json', 'Content-Encoding': ce, 'Content-Length': 2 },
    });
    for (const ce of ['idem-ref', 'IDEM-REF', 'Idem-Ref', 'gzip, idem-ref', 'idem-ref, gzip', 'dcz', 'DCZ', 'gzip,dcz',
      ['gzip', 'idem-ref'], ['idem-ref', 'identity'], ['gzip', 'Dcz'], 'idem-ref, '.repeat(2000) + 'idem-ref']) {
      const r = await post(ce);
      assert.equal(r.status, 415, `Content-Encoding ${JSON.stringify(ce).slice(0, 60)}`);
    }
    for (const ce of ['"x, idem-ref', 'gzip, "idem-ref"', 'idem-ref;x', 'gzip, id em-ref', '"', 'gzip, "x", dcz']) {
      const r = await post(ce);
      assert.equal(r.status, 400, `Content-Encoding ${JSON.stringify(ce)}`);
    }
    assert.equal(t.origin.seen.length, 0, `none reached the origin: ${JSON.stringify(t.origin.seen)}`);
  } finally {
    await t.cleanup();
  }
});

test('reverse side: a reference with a body is 400 and the connection closes; nothing in the body is parsed', async () => {
  const t = await smuggleTopology();
  try {
    const smuggled = 'GET /poison HTTP/1.1\r\nHost: origin.test\r\n\r\n';
    const lead = 'A'.repeat(10);
    const body = lead + smuggled;
    const digest = digestOf('never sent before');
    // each request signed anew: a nonce is accepted once
    const head = () => `POST /api/x HTTP/1.1\r\nHost: origin.test\r\n${peerFields('POST', '/api/x', digest)}` +
      'Content-Encoding: idem-ref\r\n';
    // Content-Length, the body arriving after the head
    const cl = await rawExchange(t.reverse.port, null, {
      chunks: [`${head()}Content-Length: ${body.length}\r\n\r\n${lead}`, smuggled],
    });
    let rs = parseResponses(cl.data);
    assert.deepEqual(rs.map((r) => r.status), [400]);
    assert.ok(cl.closed, 'the connection is closed');
    // chunked
    const ch = await rawExchange(t.reverse.port, null, {
      chunks: [`${head()}Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${lead}`, `${smuggled}\r\n0\r\n\r\n`],
    });
    rs = parseResponses(ch.data);
    assert.deepEqual(rs.map((r) => r.status), [400]);
    assert.ok(ch.closed, 'the connection is closed');
    // without a body, an unknown reference is a 415 and the connection stays
    const nb = await rawExchange(t.reverse.port,
      `${head()}Content-Length: 0\r\n\r\nGET /after HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n`);
    rs = parseResponses(nb.data);
    assert.deepEqual(rs.map((r) => r.status), [415, 200]);
    assert.deepEqual(t.origin.seen.map((s) => s.path), ['/after']);
  } finally {
    await t.cleanup();
  }
});

test('reverse side: a reference is expanded once; idem-ref repeated, or not last, is 400', async () => {
  const t = await smuggleTopology();
  try {
    const stored = JSON.stringify({ q: 'z'.repeat(60000) });
    const digest = digestOf(stored);
    // the body in full first: the reverse side holds it
    const full = await rawExchange(t.reverse.port,
      `POST /api/a HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n${peerFields('POST', '/api/a', digest)}Content-Length: ${stored.length}\r\n\r\n${stored}`);
    assert.deepEqual(parseResponses(full.data).map((r) => r.status), [200]);
    const ref = (ce) => rawExchange(t.reverse.port,
      `POST /api/a HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n${peerFields('POST', '/api/a', digest)}Content-Encoding: ${ce}\r\nContent-Length: 0\r\n\r\n`);
    // one reference: expanded, and the origin gets the body
    assert.deepEqual(parseResponses((await ref('idem-ref')).data).map((r) => r.status), [200]);
    const n = t.origin.seen.length;
    for (const ce of ['idem-ref, '.repeat(500) + 'idem-ref', 'idem-ref, idem-ref', 'idem-ref, gzip', 'IDEM-REF, Idem-Ref', '"x, idem-ref']) {
      const r = await ref(ce);
      assert.deepEqual(parseResponses(r.data).map((x) => x.status), [400], `Content-Encoding ${ce.slice(0, 40)}`);
      assert.ok(r.closed);
    }
    assert.equal(t.origin.seen.length, n, 'none of them reached the origin');
  } finally {
    await t.cleanup();
  }
});

// ---- issue 10, finding 12: the target signed is the target sent ----

test('an absolute-form target with an empty path and a query is signed as sent (200, not 401)', async () => {
  const t = await topology();
  try {
    for (const url of [`${ORIGIN}?x=1`, `${ORIGIN}/?x=1`, ORIGIN, `${ORIGIN}/doc?a=1&b=2`]) {
      const r = await get(t.forward.port, url);
      assert.equal(r.status, 200, url);
    }
    assert.deepEqual(t.state.seen.map((s) => s.url), ['/?x=1', '/?x=1', '/', '/doc?a=1&b=2']);
  } finally {
    await t.close();
  }
});

// ---- issue 10, finding 6: the peer stores stay within their size ----

test('many tiny distinct bodies keep both peer stores within their size, and the mirror in step', async () => {
  const STORE = 16384;
  const origin = await startOrigin((req, res, body) => {
    res.setHeader('Cache-Control', 'no-store');
    res.end(crypto.createHash('sha256').update(body).digest('hex')); // a tiny response per body
  });
  const procs = [];
  try {
    const reverseAdmin = await freePort();
    const forwardAdmin = await freePort();
    const reverseCfg = tmpFile('reverse.yaml',
      `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\npeer:\n  request_store: ${STORE}\n  response_store: ${STORE}\n`);
    const reverse = await startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${reverseAdmin}`]);
    procs.push(reverse);
    const forwardCfg = tmpFile('forward.yaml', 'rules:\n  - { path: "/api/*", methods: [POST], cache: true }\n');
    const forward = await startProxy(['--mode', 'forward', '--config', forwardCfg, '--peer', `http://127.0.0.1:${reverse.port}`,
      '--peer-id', 'edge-1', '--peer-secret', SECRET, '--admin', `127.0.0.1:${forwardAdmin}`]);
    procs.push(forward);
    const N = 400; // a few bytes each: counted by their bodies only, 400 would all be held
    for (let i = 0; i < N; i++) {
      const body = String(i);
      const r = await get(forward.port, `${ORIGIN}/api/tiny`, { method: 'POST', body, headers: { 'Content-Length': body.length } });
      assert.equal(r.status, 200);
    }
    const rs = JSON.parse((await get(reverseAdmin, '/stats')).body);
    const fs = JSON.parse((await get(forwardAdmin, '/stats')).body);
    for (const k of ['request_store', 'response_store']) {
      const bytes = rs[`peer_${k}_bytes`];
      const entries = rs[`peer_${k}_entries`];
      assert.ok(entries > 0 && bytes > 0, `${k}: ${JSON.stringify(rs)}`);
      assert.ok(bytes <= STORE, `${k}: ${bytes} bytes charged for a ${STORE}-byte store`);
      // each entry is charged what it costs, not its few body bytes
      assert.ok(entries <= STORE / 128, `${k}: ${entries} entries in a ${STORE}-byte store`);
    }
    assert.equal(fs.peer_mirror_entries, rs.peer_request_store_entries, 'the mirror holds what the store holds');
    assert.equal(fs.peer_mirror_bytes, rs.peer_request_store_bytes);
    assert.ok(fs.peer_body_full >= N);
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await origin.close();
  }
});

// Finding 1, defence in depth: an upstream connection whose response began
// before the request was fully written is not reused.
test('an upstream that answered before the request body was written is not pooled', async () => {
  let connections = 0;
  const origin = await startRawOrigin((s) => {
    connections++;
    let buf = Buffer.alloc(0);
    let state = 'head';
    let need = 0;
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (state === 'head') {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const cl = /\r\ncontent-length: *(\d+)/i.exec(buf.subarray(0, end).toString('latin1'));
          need = cl ? Number(cl[1]) : 0;
          buf = buf.subarray(end + 4);
          // the head of the answer at once, before reading the body
          s.write('HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 4\r\n\r\n');
          state = 'body';
        }
        if (buf.length < need) return;
        buf = buf.subarray(need);
        s.write('done');
        state = 'head';
      }
    });
  });
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  try {
    const got = await new Promise((resolve, reject) => {
      const s = net.connect(proxy.port, '127.0.0.1');
      let data = Buffer.alloc(0);
      let sentRest = false;
      s.on('error', reject);
      s.on('data', (d) => {
        data = Buffer.concat([data, d]);
        if (!sentRest && data.includes('200 OK')) {
          sentRest = true; // the response has begun: now the rest of the body
          s.write('y'.repeat(500));
        }
        if (data.toString().endsWith('done')) { s.destroy(); resolve(data.toString()); }
      });
      s.write(`POST /up HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(500)}`);
    });
    assert.match(got, /^HTTP\/1\.1 200/);
    const again = await get(proxy.port, '/again');
    assert.equal(again.body.toString(), 'done');
    assert.equal(connections, 2, 'the second request went on a new connection');
  } finally {
    await proxy.stop();
    await origin.close();
  }
});

// ---- issue 14: replay protection (a nonce per signed request) ----

const PEER_REFUSED = (details) => `idemcache; error=http_request_denied; details="${details}"`;

test('a signed request captured on the link and replayed verbatim is refused: 401, Proxy-Status "peer nonce replayed"', async () => {
  const t = await topology();
  try {
    await t.get('/doc');
    t.link.reset();
    assert.equal((await t.get('/doc?v=1')).status, 200);
    const up = t.link.bytes().up;
    assert.match(up.toString('latin1'), /\r\nIdem-Peer: id=edge-1, scheme=http, ts=\d+, nonce=[A-Za-z0-9_-]{22}, sig=[A-Za-z0-9+/=]{44}\r\n/);
    const n = t.state.seen.length;
    const [replayed] = parseResponses((await rawExchange(t.reverse.port, up)).data);
    assert.equal(replayed.status, 401);
    assert.equal(replayed.headers['proxy-status'], PEER_REFUSED('peer nonce replayed'));
    assert.equal(replayed.headers['idem-store'], undefined, 'no peer treatment');
    assert.equal(t.state.seen.length, n, 'the replay reached no origin');
    assert.match(t.reverse.errors(), /peer edge-1: replayed request refused \(nonce [A-Za-z0-9_-]{22}\)/);
    // a request with a body, replayed with it: refused as well
    t.link.reset();
    const body = JSON.stringify({ q: 'replay me', pad: 'p'.repeat(3000) });
    assert.equal((await t.post('/api/replay', body)).status, 200);
    const post = t.link.bytes().up;
    assert.match(post.toString('latin1'), /^POST \/api\/replay /);
    const m = t.state.seen.length;
    const [again] = parseResponses((await rawExchange(t.reverse.port, post)).data);
    assert.equal(again.status, 401);
    assert.equal(again.headers['proxy-status'], PEER_REFUSED('peer nonce replayed'));
    assert.equal(t.state.seen.length, m);
    // fresh requests keep working, each signed anew
    for (let i = 0; i < 3; i++) {
      t.link.reset();
      const r = await t.get('/doc?v=1');
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), doc(0));
    }
    assert.equal(t.state.seen.length, m + 3);
  } finally {
    await t.close();
  }
});

test('a signed request without a nonce (the old form) is refused: 401, Proxy-Status "peer authentication failed"', async () => {
  const t = await smuggleTopology();
  try {
    const ts = Math.floor(Date.now() / 1000);
    // version 1's signature, over method, target, ts and digest, correct for it
    const sig = crypto.createHmac('sha256', SECRET_BYTES).update(`GET\n/old\n${ts}\n`).digest('base64');
    const { data } = await rawExchange(t.reverse.port,
      `GET /old HTTP/1.1\r\nHost: origin.test\r\nIdem-Peer: id=edge-1, ts=${ts}, sig=${sig}\r\n\r\n`);
    const [r] = parseResponses(data);
    assert.equal(r.status, 401);
    assert.equal(r.headers['proxy-status'], PEER_REFUSED('peer authentication failed'));
    // the same with a nonce the signature does not cover
    const nonce = crypto.randomBytes(16).toString('base64url');
    const [r2] = parseResponses((await rawExchange(t.reverse.port,
      `GET /old HTTP/1.1\r\nHost: origin.test\r\nIdem-Peer: id=edge-1, ts=${ts}, nonce=${nonce}, sig=${sig}\r\n\r\n`)).data);
    assert.equal(r2.status, 401);
    assert.deepEqual(t.origin.seen, []);
  } finally {
    await t.cleanup();
  }
});

test('peer.nonces: at limit + 1 inside the window the request is refused (503, Retry-After), and none is forgotten', async () => {
  const t = await smuggleTopology('peer:\n  nonces: 2\n');
  try {
    const signed = [1, 2, 3].map((i) => `GET /n${i} HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n${peerFields('GET', `/n${i}`)}\r\n`);
    const status = async (bytes) => parseResponses((await rawExchange(t.reverse.port, bytes)).data)[0];
    assert.equal((await status(signed[0])).status, 200);
    assert.equal((await status(signed[1])).status, 200);
    const full = await status(signed[2]);
    assert.equal(full.status, 503);
    assert.equal(full.headers['retry-after'], '60');
    assert.equal(full.headers['proxy-status'], PEER_REFUSED('peer nonces full'));
    assert.match(t.reverse.errors(), /peer edge-1: request refused, peer\.nonces \(2\) full/);
    // refuse rather than forget: the two held are still refused as replays
    for (const s of signed.slice(0, 2)) {
      const r = await status(s);
      assert.equal(r.status, 401);
      assert.equal(r.headers['proxy-status'], PEER_REFUSED('peer nonce replayed'));
    }
    assert.deepEqual(t.origin.seen.map((s) => s.path), ['/n1', '/n2']);
    // an ordinary client is not a peer: no nonce, no limit
    assert.equal((await status('GET /plain HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n')).status, 200);
  } finally {
    await t.cleanup();
  }
});

test('peer.nonces: 0 is refused at startup, naming file, line and field', async () => {
  const cfg = tmpFile('n.yaml', 'peer:\n  nonces: 0\n');
  const p = spawnSync(BIN, ['--config', cfg, '--upstream', 'http://127.0.0.1:1', '--listen', '127.0.0.1:0'], { encoding: 'utf8' });
  assert.equal(p.status, 2);
  assert.match(p.stderr, new RegExp(`${cfg.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2: peer\\.nonces: invalid number '0'`));
});

test('a signed request whose body arrives after its head is checked once, not taken for its own replay', async () => {
  const t = await smuggleTopology();
  try {
    const body = JSON.stringify({ q: 'late body' });
    const head = `POST /api/late HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n${peerFields('POST', '/api/late', digestOf(body))}` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const { data } = await rawExchange(t.reverse.port, null, { chunks: [head, body] });
    const [r] = parseResponses(data);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'fresh /api/late');
    // and the same bytes again are a replay
    const [again] = parseResponses((await rawExchange(t.reverse.port, null, { chunks: [head, body] })).data);
    assert.equal(again.status, 401);
  } finally {
    await t.cleanup();
  }
});
