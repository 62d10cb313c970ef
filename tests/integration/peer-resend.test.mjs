// A signed request sent again (issue 14): the whole body after a 415 to a
// reference, and a retry on a fresh connection when a pooled one to the
// peer was dead. The forward side builds the resent head again from the
// exchange's request, as it built the first (proxy.c build_request_head,
// peer_stage_upstream_fields), with a new nonce: these tests pin the
// resent bytes against the first ones, field for field, and check the new
// signature as the reverse side would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { startProxy, startOrigin, startRawOrigin, startRelay, rawExchange, parseResponses, tmpFile } from './lib.mjs';

const SECRET_TEXT = 'a-long-shared-secret-for-the-tests';
const SECRET = tmpFile('peer-resend.secret', `${SECRET_TEXT}\n`);
const digestOf = (b) => `sha-256=:${crypto.createHash('sha256').update(b).digest('base64')}:`;

// The signed requests in `bytes` (what crossed toward the peer), in order:
// request line, field lines as sent, body (Content-Length framed).
function requests(bytes) {
  const out = [];
  let pos = 0;
  while (pos < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', pos);
    if (end < 0) break;
    const [line, ...fields] = bytes.subarray(pos, end).toString('latin1').split('\r\n');
    const cl = fields.find((f) => /^content-length:/i.test(f));
    const n = cl ? Number(cl.slice(cl.indexOf(':') + 1)) : 0;
    out.push({ line, fields, body: bytes.subarray(end + 4, end + 4 + n), size: end + 4 + n - pos });
    pos = end + 4 + n;
  }
  return out;
}

const field = (r, name) => {
  const f = r.fields.find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return f === undefined ? undefined : f.slice(f.indexOf(':') + 1).trim();
};

// Idem-Peer checked as the reverse side checks it (docs/peer-protocol.md):
// HMAC over id, scheme, method, target, ts, nonce and Idem-Digest.
function verifySignature(r) {
  const v = field(r, 'idem-peer');
  const m = /^id=edge-1, scheme=(https?), ts=(\d+), nonce=([A-Za-z0-9_-]{22}), sig=([A-Za-z0-9+/=]{44})$/.exec(v);
  assert.ok(m, `Idem-Peer well-formed: ${v}`);
  const [, scheme, ts, nonce, sig] = m;
  const [method, target] = r.line.split(' ');
  const want = crypto.createHmac('sha256', SECRET_TEXT)
    .update(`edge-1\n${scheme}\n${method}\n${target}\n${ts}\n${nonce}\n${field(r, 'idem-digest') || ''}`).digest('base64');
  assert.equal(sig, want, `the signature of ${r.line} verifies`);
  assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 60, 'inside the signature window');
  return nonce;
}

// Every field line but those named, in order.
const without = (r, names) => r.fields.filter((l) => !names.includes(l.slice(0, l.indexOf(':')).toLowerCase()));

test('a 415 to a reference: the whole body goes again, its head rebuilt byte for byte with a new, valid signature', async () => {
  const origin = await startOrigin((req, res, body) => {
    res.setHeader('Cache-Control', 'max-age=0');
    res.end(`got ${body.length} ${crypto.createHash('sha256').update(body).digest('hex')}`);
  });
  const reverseCfg = tmpFile('resend-reverse.yaml', `peers:\n  - id: edge-1\n    secret_file: ${SECRET}\n`);
  const startReverse = (port) => startProxy(['--config', reverseCfg, '--upstream', `http://127.0.0.1:${origin.port}`], { port });
  let reverse = await startReverse();
  const link = await startRelay(reverse.port);
  const forwardCfg = tmpFile('resend-forward.yaml', 'rules:\n  - { path: "/api/*", methods: [POST], cache: true }\n');
  const forward = await startProxy(['--mode', 'forward', '--config', forwardCfg, '--peer', `http://127.0.0.1:${link.port}`,
    '--peer-id', 'edge-1', '--peer-secret', SECRET]);
  try {
    // a gzip body: the client's coding stays, before idem-ref, on both forms
    const body = zlib.gzipSync(JSON.stringify({ q: 'resend me', pad: 'r'.repeat(3000) }));
    const post = () => rawExchange(forward.port, Buffer.concat([Buffer.from(
      'POST http://origin.test/api/resend?x=1 HTTP/1.1\r\nHost: origin.test\r\nContent-Type: application/json\r\n' +
      `Content-Encoding: gzip\r\nX-Trace: abc\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]));
    for (let i = 0; i < 2; i++) assert.equal(parseResponses((await post()).data)[0].status, 200);
    // a new reverse side has an empty store: the next reference gets 415
    const port = reverse.port;
    await reverse.stop();
    reverse = await startReverse(port);
    link.reset();
    const [r] = parseResponses((await post()).data);
    assert.equal(r.status, 200);
    assert.equal(origin.seen.at(-1).body.toString('hex'), body.toString('hex'), 'the origin got the body whole');
    assert.deepEqual(parseResponses(link.bytes().down).map((x) => x.status), [415, 200]);
    const [ref, whole, ...more] = requests(link.bytes().up);
    assert.equal(more.length, 0, 'one resend');
    assert.equal(ref.body.length, 0, 'the reference carries no body');
    assert.equal(field(ref, 'content-encoding'), 'gzip, idem-ref');
    assert.equal(field(ref, 'content-length'), '0');
    // the resend: the same request line and fields in the same order; only
    // the signature, the coding and the framing differ, and the body is there
    assert.equal(whole.line, ref.line);
    assert.equal(whole.line, 'POST /api/resend?x=1 HTTP/1.1');
    assert.deepEqual(without(whole, ['idem-peer', 'content-encoding', 'content-length']),
      without(ref, ['idem-peer', 'content-encoding', 'content-length']));
    assert.deepEqual(whole.fields.slice(-2), ['Content-Encoding: gzip', `Content-Length: ${body.length}`],
      'the framing last, as the first send writes it');
    assert.equal(whole.body.toString('hex'), body.toString('hex'));
    assert.equal(field(whole, 'idem-digest'), digestOf(body));
    assert.equal(field(whole, 'idem-digest'), field(ref, 'idem-digest'));
    const n1 = verifySignature(ref);
    const n2 = verifySignature(whole);
    assert.notEqual(n2, n1, 'a new nonce: the reverse side accepts each once');
  } finally {
    for (const p of [forward, reverse]) assert.equal((await p.stop()).code, 0);
    await link.close();
    await origin.close();
  }
});

// A fake peer whose first connection answers one request, then dies on
// the next one as it arrives (the race a retry exists for, RFC 9112
// §9.3.1); later connections answer. Keeps every request's bytes.
async function dyingPeer() {
  const state = { perConn: [], bytes: [] };
  const peer = await startRawOrigin((s) => {
    const i = state.perConn.push(0) - 1;
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const [r] = requests(buf);
        if (!r) return;
        const len = r.size;
        if (buf.length < len) return; // its body is still on the way
        state.bytes.push(buf.subarray(0, len));
        buf = buf.subarray(len);
        state.perConn[i]++;
        if (i === 0 && state.perConn[i] === 2) { s.destroy(); return; }
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: 3\r\nCache-Control: no-store\r\n\r\nok${i}`);
      }
    });
  });
  return { peer, state };
}

test('a dead pooled connection to the peer: the request is retried once, its head rebuilt with a new, valid signature', async () => {
  const { peer, state } = await dyingPeer();
  const forward = await startProxy(['--mode', 'forward', '--peer', `http://127.0.0.1:${peer.port}`,
    '--peer-id', 'edge-1', '--peer-secret', SECRET]);
  try {
    const get = (path) => rawExchange(forward.port,
      `GET http://origin.test${path} HTTP/1.1\r\nHost: origin.test\r\nAccept: application/json\r\nConnection: close\r\n\r\n`);
    assert.equal(parseResponses((await get('/one')).data)[0].body.toString(), 'ok0');
    const [r] = parseResponses((await get('/two?a=b')).data);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'ok1', 'answered on a fresh connection');
    assert.deepEqual(state.perConn, [2, 1], 'the request reached the dead connection, then one retry');
    const [, lost, retried] = state.bytes.map((b) => requests(b)[0]);
    assert.equal(lost.line, 'GET /two?a=b HTTP/1.1');
    assert.equal(retried.line, lost.line);
    assert.deepEqual(without(retried, ['idem-peer']), without(lost, ['idem-peer']), 'the same fields, in order');
    assert.equal(retried.fields.findIndex((l) => l.startsWith('Idem-Peer:')), lost.fields.findIndex((l) => l.startsWith('Idem-Peer:')),
      'Idem-Peer where it was');
    assert.notEqual(verifySignature(retried), verifySignature(lost), 'a new nonce');
  } finally {
    assert.equal((await forward.stop()).code, 0);
    await peer.close();
  }
});

// RFC 9110 §9.2.2: "A proxy MUST NOT automatically retry non-idempotent
// requests": the origin (or the peer) may have acted on a POST before the
// connection died. The client gets 502; the request went out once.
test('a POST on a dead pooled connection is not retried (RFC 9110 §9.2.2): 502, sent once, to a peer or an origin', async () => {
  for (const via of ['peer', 'origin']) {
    const { peer, state } = await dyingPeer();
    const proxy = via === 'peer'
      ? await startProxy(['--mode', 'forward', '--peer', `http://127.0.0.1:${peer.port}`, '--peer-id', 'edge-1', '--peer-secret', SECRET])
      : await startProxy(['--upstream', `http://127.0.0.1:${peer.port}`]);
    try {
      const target = via === 'peer' ? 'http://origin.test' : '';
      const send = (head, body = '') => rawExchange(proxy.port,
        `${head.replace(' /', ` ${target}/`)} HTTP/1.1\r\nHost: origin.test\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      assert.equal(parseResponses((await send('GET /one')).data)[0].status, 200);
      const [r] = parseResponses((await send('POST /pay', '{"amount":1}')).data);
      assert.equal(r.status, 502, via);
      assert.deepEqual(state.perConn, [2], `${via}: the POST reached the dead connection once, no retry`);
      assert.match(requests(state.bytes[1])[0].line, /^POST \/pay /);
    } finally {
      assert.equal((await proxy.stop()).code, 0);
      await peer.close();
    }
  }
});
