// Helpers for integration tests: start the built idemcache and real origins
// on 127.0.0.1 ports the test picks, and talk raw bytes to them.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BIN = process.env.IDEMCACHE_BIN || new URL('../../build/idemcache', import.meta.url).pathname;
export const SANITIZED = !!process.env.IDEMCACHE_SANITIZED;
export const ROOT = new URL('../../', import.meta.url).pathname;

// Every process a test starts is killed when the test file's process ends,
// whatever the outcome: a failed assertion that skips a test's stop() must
// not leave idemcache or an origin alive (the runner, started with
// --test-force-exit, then exits instead of waiting on them).
const children = new Set();
process.on('exit', () => {
  for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

export function spawnTracked(cmd, args, opts) {
  const p = spawn(cmd, args, opts);
  children.add(p);
  p.on('exit', () => children.delete(p));
  return p;
}

// A port for a server a test starts. Not from the kernel's ephemeral range
// (listen(0)): a port handed out there can be taken by any outgoing
// connection before the server binds it, and idemcache's startup probe
// then fails with EADDRINUSE (a flake CI hit once). Ports below the range
// are only ever bound on purpose; each is handed out once per process.
const handedOut = new Set();
function ephemeralLow() {
  try { return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768; } catch { return 32768; }
}
const PORT_LOW = 10000;
const PORT_HIGH = Math.max(PORT_LOW + 2000, ephemeralLow());

function bindable(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort() {
  for (let i = 0; i < 200; i++) {
    const port = PORT_LOW + Math.floor(Math.random() * (PORT_HIGH - PORT_LOW));
    if (handedOut.has(port)) continue;
    if (await bindable(port)) { handedOut.add(port); return port; }
  }
  throw new Error('no free port below the ephemeral range');
}

export function tmpFile(name, content) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-'));
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

async function waitForPort(port, proc, ms = 10000, stderr = () => '') {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error(`idemcache exited early with ${proc.exitCode}: ${stderr()}`);
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 30));
  }
  throw new Error('idemcache did not start listening');
}

// Start idemcache; `args` are extra flags. Returns { port, proc, logs(), stop() }.
export async function startProxy(args = [], { workers = 1, port: fixed } = {}) {
  const port = fixed || await freePort();
  const out = [];
  const err = [];
  const proc = spawnTracked(BIN, ['--listen', `127.0.0.1:${port}`, '--workers', String(workers), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (d) => out.push(d));
  proc.stderr.on('data', (d) => err.push(d));
  await waitForPort(port, proc, 10000, () => Buffer.concat(err).toString());
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
  return {
    port,
    proc,
    access() {
      return Buffer.concat(out).toString().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    },
    errors() { return Buffer.concat(err).toString(); },
    exited,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const r = await exited;
      const e = Buffer.concat(err).toString();
      if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(e)) throw new Error(`sanitizer report:\n${e}`);
      return r;
    },
  };
}

// A node http origin. handler(req, res, body) runs after the body is read.
export async function startOrigin(handler) {
  const seen = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body, socket: req.socket.remotePort });
      handler(req, res, body);
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    seen,
    server,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// idemcache in front of a node origin running handler, with the YAML
// config `yaml` (if any) in a file named `name`; both are stopped after
// the test, and idemcache must exit cleanly.
export async function proxyInFront(t, handler, yaml = '', name = 'proxy.yaml') {
  const origin = await startOrigin(handler);
  const args = ['--upstream', `http://127.0.0.1:${origin.port}`];
  if (yaml) args.push('--config', tmpFile(name, yaml));
  const p = await startProxy(args);
  t.after(async () => {
    const r = await p.stop();
    await origin.close();
    assert.equal(r.code, 0, 'exits cleanly');
  });
  return { p, origin };
}

// A raw TCP origin: onConn(socket) does whatever the test needs.
export async function startRawOrigin(onConn) {
  const sockets = new Set();
  const server = net.createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => {}); onConn(s); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    server,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

// Send bytes, collect everything until the peer closes or `idleMs` passes quietly.
export function rawExchange(port, bytes, { idleMs = 1500, chunks = null } = {}) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const data = [];
    let closed = false;
    let timer;
    const finish = () => { clearTimeout(timer); s.destroy(); resolve({ data: Buffer.concat(data), closed }); };
    const arm = () => { clearTimeout(timer); timer = setTimeout(finish, idleMs); };
    s.on('connect', async () => {
      if (chunks) {
        for (const c of chunks) { s.write(c); await new Promise((r) => setTimeout(r, 20)); }
      } else {
        s.write(bytes);
      }
      arm();
    });
    s.on('data', (d) => { data.push(d); arm(); });
    s.on('end', () => { closed = true; finish(); });
    s.on('error', () => { closed = true; finish(); });
  });
}

// A chunked body decoded; null when it is cut short (no last chunk).
export function dechunk(buf) {
  const parts = [];
  let pos = 0;
  for (;;) {
    const le = buf.indexOf('\r\n', pos);
    if (le < 0) return null;
    const size = parseInt(buf.subarray(pos, le).toString(), 16);
    if (Number.isNaN(size)) return null;
    pos = le + 2;
    if (size === 0) return Buffer.concat(parts);
    if (pos + size + 2 > buf.length) return null;
    parts.push(buf.subarray(pos, pos + size));
    pos += size + 2;
  }
}

// Parse a byte stream of HTTP/1.1 responses (Content-Length, chunked, or
// close-delimited for the last). `headFor` lists which requests were HEAD.
export function parseResponses(buf, { head = [] } = {}) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    const end = buf.indexOf('\r\n\r\n', pos);
    if (end < 0) break;
    const lines = buf.subarray(pos, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.(\d) (\d{3}) ?(.*)$/.exec(lines[0]);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      const k = l.slice(0, i).toLowerCase();
      const v = l.slice(i + 1).trim();
      headers[k] = headers[k] !== undefined ? `${headers[k]}, ${v}` : v;
    }
    const status = Number(m[2]);
    pos = end + 4;
    let body = Buffer.alloc(0);
    const isHead = head.includes(out.length);
    if (status < 200 || status === 204 || status === 304 || isHead) {
      // no body
    } else if (headers['transfer-encoding'] === 'chunked') {
      const parts = [];
      for (;;) {
        const le = buf.indexOf('\r\n', pos);
        const size = parseInt(buf.subarray(pos, le).toString(), 16);
        pos = le + 2;
        if (size === 0) { pos = buf.indexOf('\r\n', pos) + 2; break; }
        parts.push(buf.subarray(pos, pos + size));
        pos += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      body = buf.subarray(pos, pos + n);
      pos += n;
    } else {
      body = buf.subarray(pos);
      pos = buf.length;
    }
    out.push({ status, headers, body, minor: Number(m[1]) });
  }
  return out;
}

export function get(port, pathName, { method = 'GET', headers = {}, body, agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathName, method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A TCP relay that counts (and keeps) the bytes crossing it each way: the
// "link" between a forward and a reverse idemcache. `tamper(dir, from, to)`
// arms a one-time rewrite of the next `from` bytes seen going `dir` ('up' or
// 'down') into `to` (same length), as a faulty or hostile link would; bytes
// that could start a match are held back until the match is decided or the
// stream goes quiet, so a match split across reads is still found.
export async function startRelay(targetPort) {
  const counts = { up: 0, down: 0 };
  const seen = { up: [], down: [] };
  const armed = { up: null, down: null };
  const tampered = { up: 0, down: 0 };
  const sockets = new Set();
  function pass(dir, d, out) {
    const t = armed[dir];
    if (!t) { out.write(d); return; }
    clearTimeout(t.timer);
    const buf = Buffer.concat([t.held, d]);
    const i = buf.indexOf(t.from);
    if (i >= 0) {
      t.to.copy(buf, i);
      armed[dir] = null;
      tampered[dir]++;
      out.write(buf);
      return;
    }
    const keep = Math.min(t.from.length - 1, buf.length);
    out.write(buf.subarray(0, buf.length - keep));
    t.held = Buffer.from(buf.subarray(buf.length - keep));
    t.timer = setTimeout(() => { if (armed[dir] === t && t.held.length) { out.write(t.held); t.held = Buffer.alloc(0); } }, 50);
  }
  const server = net.createServer((a) => {
    const b = net.connect(targetPort, '127.0.0.1');
    sockets.add(a); sockets.add(b);
    a.on('data', (d) => { counts.up += d.length; seen.up.push(d); pass('up', d, b); });
    b.on('data', (d) => { counts.down += d.length; seen.down.push(d); pass('down', d, a); });
    a.on('end', () => b.end());
    b.on('end', () => a.end());
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.on('close', () => { sockets.delete(a); b.destroy(); });
    b.on('close', () => { sockets.delete(b); a.destroy(); });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: server.address().port,
    counts,
    tampered,
    reset() { counts.up = 0; counts.down = 0; seen.up = []; seen.down = []; },
    // everything that crossed since the last reset, as one buffer per direction
    bytes() { return { up: Buffer.concat(seen.up), down: Buffer.concat(seen.down) }; },
    tamper(dir, from, to) {
      const f = Buffer.from(from);
      const t = Buffer.from(to);
      if (f.length !== t.length || !f.length) throw new Error('tamper: same length, not empty');
      armed[dir] = { from: f, to: t, held: Buffer.alloc(0), timer: null };
    },
    async close() { for (const s of sockets) s.destroy(); await new Promise((r) => server.close(r)); },
  };
}
