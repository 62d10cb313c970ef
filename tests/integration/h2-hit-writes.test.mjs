// The h2 hit guard (issue 15, design server-layers.md §5): on cleartext h2
// a cache hit is one writev, its HEADERS and DATA frame headers gathered
// with slices of the stored body (NGHTTP2_DATA_FLAG_NO_COPY). idemcache
// runs under strace; N hits, one after the other on one connection, may
// add only N write calls on that connection's descriptor to those of its
// start (SETTINGS, their ACK). A head written apart from its body, or a
// write per frame, fails it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, spawnTracked, freePort, startOrigin, sleep } from './lib.mjs';

const N = 20;

function straceUsable() {
  const r = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=write', 'true']);
  if (r.error && r.error.code === 'ENOENT') throw new Error('strace is not installed: run scripts/deps.sh');
  return r.status === 0 ? null : `strace cannot trace here: ${r.stderr.toString().trim()}`;
}

// strace -f lines to calls { name, args, ret }, joining interrupted ones.
function calls(text) {
  const pending = new Map();
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    let rest = m[2];
    if (rest.endsWith('<unfinished ...>')) { pending.set(m[1], rest.slice(0, -16)); continue; }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    if (resumed) { rest = (pending.get(m[1]) || '') + resumed[1]; pending.delete(m[1]); }
    const c = /^(\w+)\((.*)\)\s+=\s+(-?\d+)/.exec(rest);
    if (c) out.push({ name: c[1], args: c[2], ret: Number(c[3]) });
  }
  return out;
}

test('an h2 cache hit is one write call: N hits on one connection add N writes (1 KiB and 200 KiB bodies)', async (t) => {
  const why = straceUsable();
  if (why) { t.skip(why); return; }
  const sizes = { small: 1024, big: 200 * 1024 };
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=600');
    res.end(Buffer.alloc(sizes[req.url.slice(1)], 'h'));
  });
  t.after(() => origin.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-h2-strace-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const trace = path.join(dir, 'trace');
  const port = await freePort();
  const proc = spawnTracked('strace', ['-f', '-qq', '-o', trace, '-e', 'trace=getpeername,write,writev,sendmsg,sendto,close',
    BIN, '--listen', `127.0.0.1:${port}`, '--workers', '1', '--upstream', `http://127.0.0.1:${origin.port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ASAN_OPTIONS: `${process.env.ASAN_OPTIONS || ''}:detect_leaks=0` },
  });
  proc.stdout.resume();
  proc.stderr.resume();
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  t.after(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  for (let i = 0; i < 1000; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    await sleep(20);
  }
  const kids = fs.readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  const pid = Number(kids.find((k) => {
    try { return fs.readFileSync(`/proc/${k}/cmdline`, 'utf8').split('\0')[0] === BIN; } catch { return false; }
  }));
  assert.ok(pid, 'idemcache among strace\'s children');
  t.after(() => { try { process.kill(pid, 'SIGKILL'); } catch {} });

  const get = (s, p) => new Promise((resolve, reject) => {
    const q = s.request({ ':path': p });
    let n = 0;
    q.on('data', (d) => { n += d.length; });
    q.on('end', () => resolve(n));
    q.on('error', reject);
  });
  const ports = {};
  for (const name of Object.keys(sizes)) {
    // fill the store on a connection of its own
    const warm = http2.connect(`http://127.0.0.1:${port}`);
    assert.equal(await get(warm, `/${name}`), sizes[name]);
    warm.close();
    // windows wide enough that no WINDOW_UPDATE wait splits a hit
    const s = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 16 << 20 } });
    await new Promise((r) => s.once('connect', r));
    s.setLocalWindowSize(16 << 20);
    for (let i = 0; i < N; i++) assert.equal(await get(s, `/${name}`), sizes[name]);
    ports[name] = s.socket.localPort;
    await new Promise((r) => s.close(r));
  }
  process.kill(pid, 'SIGTERM');
  assert.equal(await exited, 0);
  const all = calls(fs.readFileSync(trace, 'utf8'));
  for (const [name, clientPort] of Object.entries(ports)) {
    const at = all.findIndex((c) => c.name === 'getpeername' && c.ret === 0 && c.args.includes(`sin_port=htons(${clientPort})`));
    assert.ok(at >= 0, `the accept of ${name}'s connection is in the trace`);
    const fd = Number(all[at].args.split(',')[0]);
    let writes = 0;
    for (const c of all.slice(at + 1)) {
      if (Number(c.args.split(',')[0]) !== fd) continue;
      if (c.name === 'close') break;
      if (/^(write|writev|sendmsg|sendto)$/.test(c.name)) writes++;
    }
    // our SETTINGS, the ACK of the client's, maybe a WINDOW_UPDATE: at
    // most 3 writes of its start; a second write per hit would add N
    assert.ok(writes >= N && writes <= N + 3, `${name}: ${writes} writes for ${N} hits`);
  }
});
