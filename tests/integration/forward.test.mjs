// Forward-proxy mode: absolute-form requests and CONNECT tunnels, and where
// a client may (not) make the proxy connect (issue 10, finding 3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { BIN, startProxy, startOrigin, startRawOrigin, rawExchange, parseResponses, freePort, sleep, tmpFile } from './lib.mjs';

// The origins of these tests listen on loopback, which a forward proxy
// refuses by default: this config lets them through.
const loopbackOk = (extra = '') => tmpFile('fwd.yaml', `forward:\n  allow_private: true\n${extra}`);

async function forwardProxy(t, yaml, args = []) {
  const p = await startProxy(['--mode', 'forward', ...(yaml === null ? [] : ['--config', tmpFile('fwd.yaml', yaml)]), ...args]);
  t.after(() => p.stop());
  return p;
}

async function origin(t, handler) {
  const o = await startOrigin(handler);
  t.after(() => o.close());
  return o;
}

async function statusOf(port, bytes) {
  const { data } = await rawExchange(port, bytes, { idleMs: 1500 });
  const [r] = parseResponses(data);
  return r ? r.status : 0;
}

const getVia = (port, url) => statusOf(port, `GET ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
const connectVia = (port, authority) => statusOf(port, `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);

test('absolute-form request is sent in origin-form with Host from the URI', async (t) => {
  const o = await origin(t, (req, res) => res.end(`seen ${req.url} host=${req.headers.host}`));
  const p = await startProxy(['--mode', 'forward', '--config', loopbackOk()]);
  t.after(() => p.stop());
  const { data } = await rawExchange(p.port,
    `GET http://127.0.0.1:${o.port}/x?y=1 HTTP/1.1\r\nHost: wrong.example\r\nProxy-Connection: keep-alive\r\n\r\n`, { idleMs: 300 });
  const [r] = parseResponses(data);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), `seen /x?y=1 host=127.0.0.1:${o.port}`);
  assert.equal(o.seen[0].headers['proxy-connection'], undefined);
  assert.equal((await p.stop()).code, 0);
});

test('forward proxy refuses origin-form and unreachable hosts cleanly', async (t) => {
  const p = await forwardProxy(t, 'forward:\n  allow_private: true\n');
  const a = await rawExchange(p.port, 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 1000 });
  assert.equal(parseResponses(a.data)[0].status, 400);
  const dead = await freePort();
  const b = await rawExchange(p.port, `GET http://127.0.0.1:${dead}/ HTTP/1.1\r\nHost: x\r\n\r\n`, { idleMs: 1000 });
  assert.equal(parseResponses(b.data)[0].status, 502);
  const c = await rawExchange(p.port, 'GET http://no-such-host.invalid/ HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 3000 });
  assert.equal(parseResponses(c.data)[0].status, 502);
});

test('CONNECT opens a tunnel both ways, with half-close passed on', async (t) => {
  const o = await startRawOrigin((s) => {
    let got = '';
    s.on('data', (d) => { got += d; s.write(`echo:${d}`); });
    s.on('end', () => s.end(`bye:${got.length}`));
  });
  t.after(() => o.close());
  const p = await startProxy(['--mode', 'forward', '--config', loopbackOk(`  connect_ports: [${o.port}]\n`)]);
  t.after(() => p.stop());
  const s = net.connect(p.port, '127.0.0.1');
  t.after(() => s.destroy());
  let got = '';
  let ended = false;
  s.on('data', (d) => { got += d; });
  s.on('end', () => { ended = true; });
  s.write(`CONNECT 127.0.0.1:${o.port} HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\n\r\n`);
  for (let i = 0; i < 50 && !got.includes('\r\n\r\n'); i++) await sleep(20);
  assert.match(got, /^HTTP\/1\.1 200 Connection Established\r\n\r\n/);
  s.write('ping');
  for (let i = 0; i < 50 && !got.includes('echo:ping'); i++) await sleep(20);
  s.end();
  for (let i = 0; i < 100 && !ended; i++) await sleep(20);
  assert.ok(got.endsWith('bye:4'), got);
  assert.ok(ended);
  assert.equal((await p.stop()).code, 0);
});

test('forward: the admin listener is not reachable through the proxy (GET and CONNECT, any spelling)', async (t) => {
  const admin = await freePort();
  // Default config: loopback is refused, and CONNECT only goes to 443.
  const p = await forwardProxy(t, null, ['--admin', `127.0.0.1:${admin}`]);
  assert.equal(await getVia(p.port, `http://127.0.0.1:${admin}/stats`), 403);
  assert.equal(await connectVia(p.port, `127.0.0.1:${admin}`), 403);
  // Even with loopback allowed and the admin port open to CONNECT, our own
  // sockets stay out of reach, whatever name or form leads to them.
  // (An admin address of its own: the first proxy holds that one, issue 12.)
  const adminQ = await freePort();
  const q = await forwardProxy(t, `forward:\n  allow_private: true\n  connect_ports: [${adminQ}, 443]\n`, ['--admin', `127.0.0.1:${adminQ}`]);
  for (const host of ['127.0.0.1', 'localhost', '[::ffff:127.0.0.1]', '127.1', '2130706433', '0.0.0.0']) {
    assert.equal(await getVia(q.port, `http://${host}:${adminQ}/stats`), 403, host);
    assert.equal(await connectVia(q.port, `${host}:${adminQ}`), 403, host);
  }
  // ... and so is the proxy's own listener (a request loop).
  assert.equal(await getVia(q.port, `http://127.0.0.1:${q.port}/`), 403);
  const { data } = await rawExchange(q.port, `GET http://127.0.0.1:${adminQ}/stats HTTP/1.1\r\nHost: x\r\n\r\n`, { idleMs: 1000 });
  assert.match(data.toString(), /destination is this proxy/);
  assert.doesNotMatch(data.toString(), /"hits"|entries/);
});

test('forward: loopback origins are refused by default, allowed by allow_private or forward.allow', async (t) => {
  const o = await origin(t, (req, res) => res.end('origin'));
  const byDefault = await forwardProxy(t, null);
  for (const host of ['127.0.0.1', 'localhost', '[::ffff:127.0.0.1]', '127.0.0.2']) {
    assert.equal(await getVia(byDefault.port, `http://${host}:${o.port}/`), 403, host);
  }
  // This host by its own LAN address is refused too (nothing listens there: 403, not 502).
  const lan = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal);
  if (lan) assert.equal(await getVia(byDefault.port, `http://${lan.address}:${await freePort()}/`), 403, lan.address);
  const notInBlock = await forwardProxy(t, 'forward:\n  allow: [10.0.0.0/8, "fe80::/10"]\n');
  assert.equal(await getVia(notInBlock.port, `http://127.0.0.1:${o.port}/`), 403);
  assert.equal(o.seen.length, 0, 'nothing reached the loopback origin');

  const allowed = await forwardProxy(t, 'forward:\n  allow_private: true\n');
  assert.equal(await getVia(allowed.port, `http://127.0.0.1:${o.port}/a`), 200);
  const inBlock = await forwardProxy(t, 'forward:\n  allow: [127.0.0.0/8]\n');
  assert.equal(await getVia(inBlock.port, `http://localhost:${o.port}/b`), 200);
  assert.equal(o.seen.length, 2);
});

test('forward: CONNECT only to forward.connect_ports (default 443)', async (t) => {
  let conns = 0;
  const o = await startRawOrigin((s) => { conns++; s.end(); });
  t.after(() => o.close());
  const p = await forwardProxy(t, 'forward:\n  allow_private: true\n');
  assert.equal(await connectVia(p.port, `127.0.0.1:${o.port}`), 403);
  assert.equal(await connectVia(p.port, '127.0.0.1'), 400, 'CONNECT needs a port');
  assert.equal(await connectVia(p.port, '127.0.0.1:0'), 400);
  assert.equal(await connectVia(p.port, '127.0.0.1:99999'), 400);
  assert.equal(conns, 0, 'no tunnel was opened');
  const q = await forwardProxy(t, `forward:\n  allow_private: true\n  connect_ports: [${o.port}]\n`);
  assert.equal(await connectVia(q.port, `127.0.0.1:${o.port}`), 200);
  assert.equal(conns, 1);
});

test('forward.allow and forward.connect_ports errors name file, line and field', () => {
  for (const [yaml, line, field, msg] of [
    ['forward:\n  allow:\n    - 10.0.0.0/8\n    - 10.0.0.1/8\n', 4, 'forward.allow', /bits set past the prefix/],
    ['forward:\n  allow: [127.0.0.0/33]\n', 2, 'forward.allow', /prefix must be/],
    ['forward:\n  allow: [localhost]\n', 2, 'forward.allow', /not an IPv4 or IPv6 address/],
    ['forward:\n  connect_ports: [443, 0]\n', 2, 'forward.connect_ports', /invalid port '0'/],
    ['forward:\n  allow_private: maybe\n', 2, 'forward.allow_private', /invalid boolean/],
  ]) {
    const f = tmpFile('bad.yaml', yaml);
    const r = spawnSync(BIN, ['--check-config', f], { encoding: 'utf8' });
    assert.equal(r.status, 2, yaml);
    assert.match(r.stderr, new RegExp(`${f}:${line}: ${field.replace('.', '\\.')}: `), r.stderr);
    assert.match(r.stderr, msg);
  }
});
