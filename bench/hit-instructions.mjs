// Instructions per cache hit, counted by callgrind: repeatable on a busy
// machine, where req/s is not. Runs BIN under valgrind with one worker in
// front of a node origin (a 100-byte JSON body with a typical API head),
// sends N and then 5N keep-alive GETs of one stored URL, and prints the
// difference per hit, so startup and the first miss cancel out.
//   node bench/hit-instructions.mjs build/idemcache [N=500]
//   node bench/hit-instructions.mjs OLD_BIN NEW_BIN      both, and the ratio
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

if (spawnSync('valgrind', ['--version']).status !== 0) {
  console.error('valgrind is needed (apt-get install valgrind)');
  process.exit(2);
}

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function instructions(bin, hits) {
  const origin = http.createServer((req, res) => {
    res.setHeader('Cache-Control', 'max-age=3600');
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('ETag', '"0123456789abcdef0123456789abcdef"');
    res.end(JSON.stringify({ id: 7, name: 'x'.repeat(80) }));
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  const port = await freePort();
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'idem-cg-')), 'callgrind.out');
  const p = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${out}`, bin,
    '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${origin.address().port}`,
    '--workers', '1', '--access-log', 'off'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  for (let i = 0; i < 600; i++) {
    const up = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const s = net.connect(port, '127.0.0.1');
  await new Promise((r) => s.on('connect', r));
  const req = 'GET /item HTTP/1.1\r\nHost: api.example\r\nAccept: application/json\r\nUser-Agent: bench\r\n\r\n';
  let answered = 0;
  let buf = Buffer.alloc(0);
  await new Promise((resolve) => {
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const len = Number(/content-length: (\d+)/i.exec(buf.subarray(0, end).toString())[1]);
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        if (++answered === hits + 1) { resolve(); return; } // the first one is the miss
        s.write(req);
      }
    });
    s.write(req);
  });
  s.destroy();
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
  origin.close();
  const m = /summary: (\d+)/.exec(fs.readFileSync(out, 'utf8'));
  if (!m) throw new Error(`no callgrind summary: ${err.slice(-500)}`);
  return Number(m[1]);
}

async function perHit(bin, n) {
  const a = await instructions(bin, n);
  const b = await instructions(bin, 5 * n);
  return (b - a) / (4 * n);
}

const args = process.argv.slice(2);
if (!args.length) {
  console.error('usage: node bench/hit-instructions.mjs BIN [N] | OLD_BIN NEW_BIN');
  process.exit(2);
}
if (args.length === 2 && !/^\d+$/.test(args[1])) {
  const [oldBin, newBin] = args;
  const o = await perHit(oldBin, 500);
  const n = await perHit(newBin, 500);
  console.log(`instructions per hit: old ${o.toFixed(0)}, new ${n.toFixed(0)}, new/old ${(n / o).toFixed(3)}`);
} else {
  const n = await perHit(args[0], Number(args[1] || 500));
  console.log(`instructions per hit: ${n.toFixed(0)} (${args[0]})`);
}
