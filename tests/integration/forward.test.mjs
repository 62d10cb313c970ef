// Forward-proxy mode: absolute-form requests and CONNECT tunnels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startProxy, startOrigin, startRawOrigin, rawExchange, parseResponses, freePort, sleep } from './lib.mjs';

test('absolute-form request is sent in origin-form with Host from the URI', async () => {
  const origin = await startOrigin((req, res) => res.end(`seen ${req.url} host=${req.headers.host}`));
  const p = await startProxy(['--mode', 'forward']);
  const { data } = await rawExchange(p.port,
    `GET http://127.0.0.1:${origin.port}/x?y=1 HTTP/1.1\r\nHost: wrong.example\r\nProxy-Connection: keep-alive\r\n\r\n`, { idleMs: 300 });
  const [r] = parseResponses(data);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), `seen /x?y=1 host=127.0.0.1:${origin.port}`);
  assert.equal(origin.seen[0].headers['proxy-connection'], undefined);
  assert.equal((await p.stop()).code, 0);
  await origin.close();
});

test('forward proxy refuses origin-form and unreachable hosts cleanly', async () => {
  const p = await startProxy(['--mode', 'forward']);
  const a = await rawExchange(p.port, 'GET /x HTTP/1.1\r\nHost: a\r\n\r\n', { idleMs: 1000 });
  assert.equal(parseResponses(a.data)[0].status, 400);
  const dead = await freePort();
  const b = await rawExchange(p.port, `GET http://127.0.0.1:${dead}/ HTTP/1.1\r\nHost: x\r\n\r\n`, { idleMs: 1000 });
  assert.equal(parseResponses(b.data)[0].status, 502);
  const c = await rawExchange(p.port, 'GET http://no-such-host.invalid/ HTTP/1.1\r\nHost: x\r\n\r\n', { idleMs: 3000 });
  assert.equal(parseResponses(c.data)[0].status, 502);
  await p.stop();
});

test('CONNECT opens a tunnel both ways, with half-close passed on', async () => {
  const origin = await startRawOrigin((s) => {
    let got = '';
    s.on('data', (d) => { got += d; s.write(`echo:${d}`); });
    s.on('end', () => s.end(`bye:${got.length}`));
  });
  const p = await startProxy(['--mode', 'forward']);
  const s = net.connect(p.port, '127.0.0.1');
  let got = '';
  let ended = false;
  s.on('data', (d) => { got += d; });
  s.on('end', () => { ended = true; });
  s.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
  for (let i = 0; i < 50 && !got.includes('\r\n\r\n'); i++) await sleep(20);
  assert.match(got, /^HTTP\/1\.1 200 Connection Established\r\n\r\n/);
  s.write('ping');
  for (let i = 0; i < 50 && !got.includes('echo:ping'); i++) await sleep(20);
  s.end();
  for (let i = 0; i < 100 && !ended; i++) await sleep(20);
  assert.ok(got.endsWith('bye:4'), got);
  assert.ok(ended);
  assert.equal((await p.stop()).code, 0);
  await origin.close();
});
