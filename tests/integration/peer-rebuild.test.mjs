// The forward side's rebuilt responses (issue 14, step 8): a peer's coded
// response is decoded into the origin's head and body, handed to the relay
// from memory (h1_client_deliver), never written back as HTTP/1 text and
// parsed again. What that change could break and peer.test.mjs does not pin:
// bytes behind a rebuilt response on the link, pipelined clients behind it,
// HEAD, 304 and Vary through the handshake, and bodyless responses a peer
// marks as coded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startProxy, startOrigin, startRawOrigin, startRelay, rawExchange, parseResponses, get, tmpFile } from './lib.mjs';

const SECRET = tmpFile('peer-rebuild.secret', 'a-long-shared-secret-for-the-tests\n');
const DOC = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) });
const digest = (b) => `sha-256=:${crypto.createHash('sha256').update(b).digest('base64')}:`;

// client -> forward idemcache -> link (relay) -> reverse idemcache -> origin
async function pair(handler) {
  const origin = await startOrigin(handler);
  const reverseCfg = tmpFile('rebuild-reverse.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`);
  const reverse = await startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`]);
  const link = await startRelay(reverse.port);
  const forward = await startProxy(['--mode', 'forward', '--peer', `http://127.0.0.1:${link.port}`,
    '--peer-id', 'edge-1', '--peer-secret', SECRET]);
  return {
    origin, link, forward,
    async close() {
      for (const p of [forward, reverse]) assert.equal((await p.stop()).code, 0);
      await link.close();
      await origin.close();
    },
  };
}

// The Content-Encoding of the last response that came down the link.
function lastCoding(link) {
  const down = link.bytes().down.toString('latin1');
  const heads = down.split(/\r\n\r\n/).filter((h) => /^HTTP\/1\.1 /m.test(h));
  const head = heads.at(-1) || '';
  const m = /\r\ncontent-encoding: *([^\r]*)/i.exec(head);
  return m ? m[1] : '';
}

// A fake reverse side: answers each request head with respond(method, path),
// raw bytes, whatever a peer might send; counts connections.
async function fakePeer(respond) {
  const state = { connections: 0, requests: [] };
  const peer = await startRawOrigin((s) => {
    state.connections++;
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const line = buf.subarray(0, buf.indexOf('\r\n')).toString('latin1');
        buf = buf.subarray(end + 4);
        const [method, path] = line.split(' ');
        state.requests.push(`${method} ${path}`);
        s.write(respond(method, path));
      }
    });
  });
  return { peer, state };
}

async function withFakePeer(respond, fn) {
  const { peer, state } = await fakePeer(respond);
  const cfg = tmpFile('rebuild-forward.yaml', 'timeouts:\n  upstream_first_byte: 3s\n  upstream_idle: 3s\n');
  const forward = await startProxy(['--mode', 'forward', '--config', cfg, '--peer', `http://127.0.0.1:${peer.port}`,
    '--peer-id', 'edge-1', '--peer-secret', SECRET]);
  try {
    await fn(forward, state);
  } finally {
    await forward.stop();
    await peer.close();
  }
}

test('a rebuilt response with bytes pipelined behind it on the link: the client gets the response, the bytes go nowhere', async () => {
  const body = 'the origin body, as the peer verified it\n';
  const smuggled = 'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled';
  await withFakePeer((method, path) => {
    if (path.endsWith('/first')) {
      return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nIdem-Digest: ${digest(body)}\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body}${smuggled}`;
    }
    return 'HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 4\r\n\r\nnext';
  }, async (forward, state) => {
    const a = await get(forward.port, 'http://origin.test/first');
    assert.equal(a.status, 200);
    assert.equal(a.body.toString(), body, 'byte for byte the verified body');
    assert.equal(a.headers['content-length'], String(body.length));
    assert.equal(a.headers['idem-digest'], undefined, 'the handshake stays on the link');
    const b = await get(forward.port, 'http://origin.test/second');
    assert.equal(b.body.toString(), 'next', 'the next request gets its own answer, not the bytes behind the first');
    assert.equal(state.connections, 2, 'the link connection with bytes left over was not pooled');
  });
});

test('a HEAD or 304 a peer marks with Idem-Digest has no body to wait for (RFC 9112 §6.3); marked idem-ref it is 502', async () => {
  const body = 'x'.repeat(100);
  await withFakePeer((method, path) => {
    if (path.endsWith('/coded-head')) {
      return `HTTP/1.1 200 OK\r\nIdem-Digest: ${digest(body)}\r\nContent-Encoding: idem-ref\r\nContent-Length: 0\r\n\r\n`;
    }
    if (path.endsWith('/not-modified')) {
      return `HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nIdem-Digest: ${digest(body)}\r\nContent-Length: 100\r\n\r\n`;
    }
    if (method === 'HEAD') {
      return `HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nIdem-Digest: ${digest(body)}\r\nContent-Length: 100\r\n\r\n`;
    }
    return `HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  }, async (forward, state) => {
    const { data } = await rawExchange(forward.port,
      'HEAD http://origin.test/h HTTP/1.1\r\nHost: origin.test\r\n\r\n' +
      'GET http://origin.test/not-modified HTTP/1.1\r\nHost: origin.test\r\nIf-None-Match: "v1"\r\n\r\n' +
      'GET http://origin.test/g HTTP/1.1\r\nHost: origin.test\r\n\r\n', { idleMs: 1000 });
    const rs = parseResponses(data, { head: [0] });
    assert.equal(rs.length, 3, `three answers, in order, at once: ${data.toString('latin1')}`);
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].headers['content-length'], '100', 'the origin\'s length of the representation');
    assert.equal(rs[0].headers['idem-digest'], undefined);
    assert.equal(rs[1].status, 304);
    assert.equal(rs[1].headers.etag, '"v1"');
    assert.equal(rs[2].status, 200);
    assert.equal(rs[2].body.toString(), body);
    assert.equal(state.connections, 1, 'the link stayed in step: one connection for all three');
    const coded = await get(forward.port, 'http://origin.test/coded-head', { method: 'HEAD' });
    assert.equal(coded.status, 502, 'our coding on a message without a body is broken, never relayed');
    assert.equal(coded.headers['content-encoding'], undefined);
  });
});

test('pipelined requests behind rebuilt responses each get their own, in order', async () => {
  const t = await pair((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'max-age=0');
    res.end(`${req.url.length % 2 ? '' : ' '}${DOC}${req.url}`);
  });
  try {
    const paths = ['/a', '/bb', '/a', '/bb'];
    const want = (p) => `${p.length % 2 ? '' : ' '}${DOC}${p}`;
    for (const p of paths.slice(0, 2)) assert.equal((await get(t.forward.port, `http://origin.test${p}`)).body.toString(), want(p));
    t.link.reset();
    const req = paths.map((p) => `GET http://origin.test${p} HTTP/1.1\r\nHost: origin.test\r\n\r\n`).join('');
    const { data } = await rawExchange(t.forward.port, req, { idleMs: 1000 });
    const rs = parseResponses(data);
    assert.equal(rs.length, 4);
    rs.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), want(paths[i]), `response ${i} is its own request's`);
      assert.equal(r.headers['content-encoding'], undefined);
    });
    assert.equal(lastCoding(t.link), 'idem-ref', 'they came back as references: rebuilt');
  } finally {
    await t.close();
  }
});

test('HEAD, 304 and Vary through the handshake: rebuilt responses keep the origin\'s fields and variants', async () => {
  const t = await pair((req, res) => {
    const gz = /gzip/.test(req.headers['accept-encoding'] || '');
    const body = gz ? `${DOC} (gzip variant)` : DOC;
    const etag = gz ? '"v1-gz"' : '"v1"';
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'max-age=0');
    res.setHeader('Vary', 'Accept-Encoding');
    res.setHeader('ETag', etag);
    res.setHeader('Content-Length', Buffer.byteLength(body)); // a HEAD's too
    // on /v validators are ignored: every revalidation is a 200 the
    // reverse side holds and sends as a reference, which the forward side
    // rebuilds; /v304 answers them
    if (req.url === '/v304' && req.headers['if-none-match'] === etag) {
      res.statusCode = 304;
      res.end();
      return;
    }
    res.end(body);
  });
  try {
    const plain = () => get(t.forward.port, 'http://origin.test/v');
    const gzip = () => get(t.forward.port, 'http://origin.test/v', { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal((await plain()).body.toString(), DOC);
    assert.equal((await gzip()).body.toString(), `${DOC} (gzip variant)`);
    for (let i = 0; i < 2; i++) {
      t.link.reset();
      const p = await plain();
      assert.equal(p.status, 200);
      assert.equal(p.body.toString(), DOC, 'each variant its own body');
      assert.equal(p.headers.etag, '"v1"');
      assert.equal(p.headers.vary, 'Accept-Encoding');
      assert.equal(p.headers['content-length'], String(DOC.length));
      assert.ok(!Object.keys(p.headers).some((k) => k.startsWith('idem-')));
      assert.equal(lastCoding(t.link), 'idem-ref', 'rebuilt from a reference');
      t.link.reset();
      const g = await gzip();
      assert.equal(g.body.toString(), `${DOC} (gzip variant)`);
      assert.equal(g.headers.etag, '"v1-gz"');
      assert.equal(lastCoding(t.link), 'idem-ref', 'the other variant too, against its own dictionary');
    }
    // a client's own validator: 304 from the forward side, the origin's fields
    assert.equal((await get(t.forward.port, 'http://origin.test/v304')).body.toString(), DOC);
    for (let i = 0; i < 2; i++) {
      const nm = await get(t.forward.port, 'http://origin.test/v304', { headers: { 'If-None-Match': '"v1"' } });
      assert.equal(nm.status, 304);
      assert.equal(nm.headers.etag, '"v1"');
      assert.equal(nm.headers.vary, 'Accept-Encoding');
      assert.equal(nm.body.length, 0);
      const full = await get(t.forward.port, 'http://origin.test/v304');
      assert.equal(full.body.toString(), DOC, 'the stored body, refreshed by the 304 that crossed the link');
    }
    // HEAD: the head and the origin's length, no body; the connection goes on
    const { data } = await rawExchange(t.forward.port,
      'HEAD http://origin.test/v HTTP/1.1\r\nHost: origin.test\r\n\r\n' +
      'GET http://origin.test/v HTTP/1.1\r\nHost: origin.test\r\n\r\n', { idleMs: 1000 });
    const rs = parseResponses(data, { head: [0] });
    assert.equal(rs.length, 2);
    assert.equal(rs[0].status, 200);
    assert.equal(rs[0].headers['content-length'], String(DOC.length));
    assert.equal(rs[0].body.length, 0);
    assert.equal(rs[1].body.toString(), DOC);
  } finally {
    await t.close();
  }
});

// The reverse side sends a stored response to a peer from the object's
// fields and reason (peer_stage_send), never from its stored status line
// and field text: the same head whole, or as a reference, in order.
test('a stored response sent to a peer, whole or as a reference, keeps its reason phrase and its fields in order', async () => {
  const t = await pair((req, res) => {
    res.statusMessage = 'Fine Thanks';
    res.setHeader('Cache-Control', 'max-age=0');
    res.setHeader('X-First', 'one');
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('X-Last', 'two');
    res.end(DOC);
  });
  try {
    for (const coding of ['', 'idem-ref']) {
      t.link.reset();
      const { data } = await rawExchange(t.forward.port, 'GET http://origin.test/reason HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n\r\n');
      const [r] = parseResponses(data);
      assert.equal(r.body.toString(), DOC);
      assert.equal(lastCoding(t.link), coding);
      for (const [dir, bytes] of [['link', t.link.bytes().down], ['client', data]]) {
        const head = bytes.subarray(0, bytes.indexOf('\r\n\r\n')).toString('latin1').split('\r\n');
        assert.equal(head[0], 'HTTP/1.1 200 Fine Thanks', `${dir}, ${coding || 'whole'}`);
        const names = head.slice(1).map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
        const ours = names.filter((n) => ['cache-control', 'x-first', 'content-type', 'x-last'].includes(n));
        assert.deepEqual(ours, ['cache-control', 'x-first', 'content-type', 'x-last'], `${dir}, ${coding || 'whole'}`);
      }
    }
  } finally {
    await t.close();
  }
});
