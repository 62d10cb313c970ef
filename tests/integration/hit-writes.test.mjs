// The hit guard (issue 14): a cache hit on a cleartext HTTP/1 connection is
// one writev of the stored head, the fields we add and the stored body
// segments. The real binary runs under strace; N hits on one keep-alive
// connection must be exactly N write calls on that connection's descriptor,
// for a small body and for one stored in several segments. A copy, a head
// written apart from its body, or a write per segment fails it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, spawnTracked, freePort, startOrigin, parseResponses, sleep } from './lib.mjs';

const N = 20;
const SIZES = { small: 1024, segmented: 200 * 1024 }; // 200 KiB: four 64 KiB store segments

// strace is in scripts/deps.sh's list; a container that forbids ptrace
// cannot run this guard at all, which is said, not hidden.
function straceUsable() {
  const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=write', 'true']);
  if (r.error && r.error.code === 'ENOENT') throw new Error('strace is not installed: run scripts/deps.sh');
  return r.status === 0 ? null : `strace cannot trace here: ${r.stderr.toString().trim()}`;
}

// Parse strace -f output into whole calls: { pid, name, args, ret }, joining
// a call another thread's call interrupted ("<unfinished ...>" and
// "<... name resumed>").
export function straceCalls(text) {
  const pending = new Map();
  const calls = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = m[1];
    let rest = m[2];
    if (rest.endsWith('<unfinished ...>')) {
      pending.set(pid, rest.slice(0, -'<unfinished ...>'.length));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    if (resumed) {
      rest = (pending.get(pid) || '') + resumed[1];
      pending.delete(pid);
    }
    const c = /^(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(rest);
    if (c) calls.push({ pid, name: c[1], args: c[2], ret: Number(c[3]) });
  }
  return calls;
}

// The write calls made on the descriptor idemcache accepted for the
// client at `clientPort`, from its accept to its close. libuv accepts with
// no address; idemcache asks for the peer's (the client's IP) right after,
// and that getpeername names the port.
function writesFor(calls, clientPort) {
  const at = calls.findIndex((c) => c.name === 'getpeername' && c.ret === 0 && c.args.includes(`sin_port=htons(${clientPort})`));
  assert.ok(at >= 0, `the accept of the client at port ${clientPort} is in the trace`);
  const fd = Number(calls[at].args.split(',')[0]);
  const out = [];
  for (const c of calls.slice(at + 1)) {
    const first = Number(c.args.split(',')[0]);
    if (first !== fd) continue;
    if (c.name === 'close') break;
    if (/^(write|writev|sendmsg|sendto)$/.test(c.name)) out.push(c);
  }
  return out;
}

// N GETs on one keep-alive connection, each sent once the previous answer
// is whole (so no two answers can share a write). Returns the responses and
// the client's port.
async function hitsOnOneConnection(port, pathName, n, size) {
  const s = net.connect(port, '127.0.0.1');
  await new Promise((r, j) => { s.on('connect', r); s.on('error', j); });
  let buf = Buffer.alloc(0);
  s.on('data', (d) => { buf = Buffer.concat([buf, d]); });
  const out = [];
  for (let i = 0; i < n; i++) {
    buf = Buffer.alloc(0);
    s.write(`GET ${pathName} HTTP/1.1\r\nHost: a\r\n\r\n`);
    for (let k = 0; k < 2000; k++) {
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0 && buf.length >= end + 4 + size) break;
      await sleep(5);
    }
    const [r] = parseResponses(buf);
    assert.ok(r, `answer ${i} arrived`);
    out.push(r);
  }
  const clientPort = s.localPort;
  s.destroy();
  return { out, clientPort };
}

test('a cache hit is one write call: N hits on one keep-alive connection are N writes (small and multi-segment bodies)', async (t) => {
  const why = straceUsable();
  if (why) { t.skip(why); return; }
  const bodies = Object.fromEntries(Object.entries(SIZES).map(([k, n]) => [k, Buffer.alloc(n, k[0])]));
  const origin = await startOrigin((req, res) => {
    const b = bodies[req.url.slice(1)];
    res.setHeader('Cache-Control', 'max-age=600');
    res.end(b);
  });
  t.after(() => origin.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-strace-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const trace = path.join(dir, 'trace');
  const port = await freePort();
  const proc = spawnTracked('strace', ['-f', '-qq', '-o', trace, '-e', 'trace=getpeername,write,writev,sendmsg,sendto,close',
    BIN, '--listen', `127.0.0.1:${port}`, '--workers', '1', '--upstream', `http://127.0.0.1:${origin.port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // LeakSanitizer cannot run under ptrace; the other suites check leaks
    env: { ...process.env, ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:detect_leaks=0` },
  });
  const err = [];
  proc.stderr.on('data', (d) => err.push(d));
  proc.stdout.resume(); // the access log: another descriptor, another thread
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  t.after(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  for (let i = 0; i < 1000; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    assert.equal(proc.exitCode, null, `idemcache exited: ${Buffer.concat(err)}`);
    await sleep(20);
  }
  // The traced process is strace's child: signals go to it, not to strace.
  // It is found by its command line, as strace forks short-lived children
  // of its own at startup to probe what ptrace can do.
  const kids = fs.readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  const pid = Number(kids.find((k) => {
    try { return fs.readFileSync(`/proc/${k}/cmdline`, 'utf8').split('\0')[0] === BIN; } catch { return false; }
  }));
  assert.ok(pid, `idemcache among strace's children ${kids}`);
  // a tracee outlives a killed strace: stop it too, whatever the outcome
  // (even when the runner ends this file's process on a timeout)
  const killTracee = () => { try { process.kill(pid, 'SIGKILL'); } catch { /* exited */ } };
  process.on('exit', killTracee);
  t.after(killTracee);
  const results = {};
  for (const [name, size] of Object.entries(SIZES)) {
    const warm = await hitsOnOneConnection(port, `/${name}`, 1, size); // the miss that stores it
    assert.match(warm.out[0].headers['cache-status'], /stored/);
    results[name] = await hitsOnOneConnection(port, `/${name}`, N, size);
    for (const r of results[name].out) {
      assert.match(r.headers['cache-status'], /^idemcache; hit/);
      assert.ok(r.body.equals(bodies[name]));
    }
  }
  process.kill(pid, 'SIGTERM');
  assert.equal(await exited, 0, `idemcache under strace exits 0: ${Buffer.concat(err)}`);
  const calls = straceCalls(fs.readFileSync(trace, 'utf8'));
  for (const [name, size] of Object.entries(SIZES)) {
    const w = writesFor(calls, results[name].clientPort);
    const summary = w.map((c) => `${c.name}=${c.ret}`).join(' ');
    assert.equal(w.length, N, `${name} (${size} bytes): ${N} hits took ${w.length} write calls: ${summary}`);
    for (const c of w) assert.ok(c.ret > size, `each write carries a whole answer: ${summary}`);
  }
});
