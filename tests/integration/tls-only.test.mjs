// A TLS-only setup (issue 14, gaps): tls.listen (or --tls-listen) without
// listen serves TLS and opens no cleartext port, as nginx's `listen 443
// ssl` alone does; with neither, startup still stops (listen has no
// default). Certificates are made at run time by certs.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import { BIN, spawnTracked, startOrigin, freePort, tmpFile, sleep } from './lib.mjs';
import { certsForTests } from './tls-lib.mjs';

const C = certsForTests('tls-only');

const sanitizerCheck = (stderr) => {
  if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(stderr)) throw new Error(`sanitizer report:\n${stderr}`);
};

// idemcache with exactly `args` (no --listen added); resolves once the
// startup line is logged. Stopped by t.after whatever happens.
async function startBare(t, args) {
  const err = [];
  const proc = spawnTracked(BIN, ['--workers', '1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => err.push(d));
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const errors = () => Buffer.concat(err).toString();
  t.after(async () => {
    if (proc.exitCode === null) proc.kill('SIGTERM');
    await exited;
    sanitizerCheck(errors());
  });
  while (!/idemcache listening on/.test(errors())) {
    if (proc.exitCode !== null) throw new Error(`idemcache exited with ${proc.exitCode}: ${errors()}`);
    await sleep(20);
  }
  return { proc, errors };
}

// The TCP ports the process listens on: its socket inodes matched against
// the kernel's table of listening sockets (state 0A).
function listeningPorts(pid) {
  const inodes = new Set();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  const ports = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(table, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) ports.push(parseInt(f[1].split(':')[1], 16));
    }
  }
  return ports.sort((a, b) => a - b);
}

function httpsGet(port) {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/only', agent: false, ca: fs.readFileSync(C.ca.cert) }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    }).on('error', reject);
  });
}

async function servesTlsOnly(t, args, tlsPort) {
  const p = await startBare(t, args);
  const r = await httpsGet(tlsPort);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'over TLS');
  assert.deepEqual(listeningPorts(p.proc.pid), [tlsPort], 'the TLS port and nothing else');
  assert.match(p.errors(), new RegExp(`\\[info\\] idemcache listening on 127\\.0\\.0\\.1:${tlsPort} \\(TLS only, 1 workers, reverse mode\\)`));
  assert.doesNotMatch(p.errors(), /\[info\] listener /, 'no cleartext listener is logged');
}

test('--tls-listen without --listen serves TLS only: no cleartext port is opened', async (t) => {
  const origin = await startOrigin((req, res) => res.end('over TLS'));
  t.after(() => origin.close());
  const tlsPort = await freePort();
  await servesTlsOnly(t, ['--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', C.server.cert,
    '--tls-key', C.server.key, '--upstream', `http://127.0.0.1:${origin.port}`], tlsPort);
});

test('tls.listen in the file without listen serves TLS only; --check-config does not ask for listen', async (t) => {
  const origin = await startOrigin((req, res) => res.end('over TLS'));
  t.after(() => origin.close());
  const tlsPort = await freePort();
  const f = tmpFile('tls-only.yaml', `upstream: http://127.0.0.1:${origin.port}\n` +
    `tls:\n  listen: [127.0.0.1:${tlsPort}]\n  cert: ${C.server.cert}\n  key: ${C.server.key}\n`);
  const chk = spawnSync(BIN, ['--check-config', f], { encoding: 'utf8', timeout: 20000 });
  sanitizerCheck(chk.stderr);
  assert.equal(chk.status, 0, chk.stderr);
  assert.doesNotMatch(chk.stderr, /listen: none set/);
  await servesTlsOnly(t, ['--config', f], tlsPort);
});

test('neither listen nor tls.listen: exit 2, as before (listen has no default)', () => {
  const r = spawnSync(BIN, ['--upstream', 'http://127.0.0.1:1', '--workers', '1'], { encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL' });
  sanitizerCheck(r.stderr);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /idemcache: listen: at least one address is required \(--listen HOST:PORT, or --tls-listen HOST:PORT for TLS only\)/);
  // a file alone may leave listen to the flags: --check-config warns and passes
  const f = tmpFile('none.yaml', 'upstream: http://127.0.0.1:1\n');
  const c = spawnSync(BIN, ['--check-config', f], { encoding: 'utf8', timeout: 20000 });
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stderr, /listen: none set; --listen HOST:PORT is needed at startup \(or --tls-listen for TLS only\)/);
});

test('a TLS-only forward proxy still refuses requests aimed at its own TLS socket', async (t) => {
  const tlsPort = await freePort();
  await startBare(t, ['--mode', 'forward', '--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', C.server.cert,
    '--tls-key', C.server.key]);
  const r = await new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: tlsPort, path: `http://127.0.0.1:${tlsPort}/`, agent: false,
      ca: fs.readFileSync(C.ca.cert), headers: { host: `127.0.0.1:${tlsPort}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    }).on('error', reject);
  });
  assert.equal(r, 403);
});
