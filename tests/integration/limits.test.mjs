// limits.max_connections: a global cap on client connections (issue 10, "Also harden").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { BIN, startProxy, startOrigin, parseResponses, freePort, sleep, tmpFile, get, spawnTracked } from './lib.mjs';

// A client connection that sends requests and reads whole responses.
function client(t, port) {
  const s = net.connect(port, '127.0.0.1');
  t.after(() => s.destroy());
  let buf = Buffer.alloc(0);
  let closed = false;
  let asked = 0;
  s.on('data', (d) => { buf = Buffer.concat([buf, d]); });
  s.on('close', () => { closed = true; });
  s.on('error', () => {});
  return {
    socket: s,
    get closed() { return closed; },
    // The n-th response on this connection answers the n-th request; one
    // sent before any request (a refusal) answers the first.
    async request(path) {
      const k = asked++;
      s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      for (let i = 0; i < 250; i++) {
        const rs = buf.includes('\r\n\r\n') ? parseResponses(buf) : [];
        const r = rs[k];
        if (r && (r.headers['content-length'] === undefined || r.body.length === Number(r.headers['content-length']))) return r;
        if (closed) break;
        await sleep(20);
      }
      return parseResponses(buf)[k];
    },
    async waitClosed() {
      for (let i = 0; i < 250 && !closed; i++) await sleep(20);
      return closed;
    },
  };
}

test('limits.max_connections: connection limit+1 gets 503 and is closed, across workers; a freed slot is reused', async (t) => {
  const origin = await startOrigin((req, res) => res.end('ok'));
  t.after(() => origin.close());
  const admin = await freePort();
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${admin}`,
    '--config', tmpFile('limits.yaml', 'limits:\n  max_connections: 2\n')], { workers: 2 });
  t.after(() => p.stop());

  // A connection that holds a slot. startProxy's readiness probe may hold
  // one for a moment after it closed, until the worker has seen it go.
  async function holder(path) {
    for (let i = 0; i < 100; i++) {
      const h = client(t, p.port);
      const r = await h.request(path);
      if (r && r.status === 200) return h;
      h.socket.destroy();
      await sleep(20);
    }
    throw new Error('no slot');
  }
  const a = await holder('/a');
  const b = await holder('/b');

  // The third, whichever worker takes it: refused.
  const c = client(t, p.port);
  const r = await c.request('/c');
  assert.equal(r.status, 503);
  assert.equal(r.headers.connection, 'close');
  assert.ok(await c.waitClosed(), 'the refused connection is closed');
  assert.equal(origin.seen.filter((s) => s.url === '/c').length, 0);

  // The admin listener stays reachable past the cap.
  assert.equal((await get(admin, '/healthz')).status, 200);

  // The two held connections still work; once one goes, its slot is free.
  assert.equal((await a.request('/a2')).status, 200);
  a.socket.destroy();
  const d = await holder('/d');
  d.socket.destroy();
  assert.equal((await b.request('/b2')).status, 200);
});

test('limits.max_connections must be at least 1', () => {
  const f = tmpFile('zero.yaml', 'limits:\n  max_connections: 0\n');
  const r = spawnSync(BIN, ['--check-config', f], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /limits\.max_connections: must be at least 1/);
});

// Under a low descriptor limit the default cap is lowered to what fits (two
// descriptors a connection), so the cap answers 503 before accept() fails
// with EMFILE; a configured cap is kept, with a warning.
async function startUnderUlimit(t, nofile, extra = []) {
  const port = await freePort();
  const origin = await startOrigin((req, res) => res.end('ok'));
  t.after(() => origin.close());
  const p = spawnTracked('sh', ['-c', `ulimit -n ${nofile} && exec "$0" "$@"`, BIN,
    '--listen', `127.0.0.1:${port}`, '--workers', '1', '--upstream', `http://127.0.0.1:${origin.port}`, ...extra]);
  t.after(() => p.kill('SIGKILL'));
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  for (let i = 0; i < 200 && !/listening/.test(err) && p.exitCode === null; i++) await sleep(25);
  assert.match(err, /listening/);
  return { port, errors: () => err };
}

test('limits.max_connections: the default is lowered to what ulimit -n allows; a configured cap is kept with a warning', async (t) => {
  const low = await startUnderUlimit(t, 200);
  assert.match(low.errors(), /\[info\] limits\.max_connections: 68 \(ulimit -n is 200\)/);
  // the cap in force is 68: 68 kept-alive connections, then a 503
  const held = [];
  t.after(() => held.forEach((s) => s.destroy()));
  const answer = (s) => new Promise((resolve) => {
    let buf = '';
    s.on('data', (d) => { buf += d; if (buf.includes('\r\n\r\n')) resolve(buf); });
    s.on('close', () => resolve(buf));
    s.on('error', () => resolve(buf));
    s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  });
  for (let i = 0; i < 68; i++) {
    const s = net.connect(low.port, '127.0.0.1');
    held.push(s);
    assert.match(await answer(s), /^HTTP\/1\.1 200/, `connection ${i + 1}`);
  }
  const over = net.connect(low.port, '127.0.0.1');
  held.push(over);
  assert.match(await answer(over), /^HTTP\/1\.1 503/, 'connection 69');
  const set = await startUnderUlimit(t, 200, ['--config', tmpFile('cap.yaml', 'limits:\n  max_connections: 500\n')]);
  assert.match(set.errors(), /\[warn\] limits\.max_connections 500 needs about 1064 descriptors; ulimit -n is 200/);
});
