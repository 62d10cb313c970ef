// TLS settings that nothing uses (issue 14, gaps): upstream_tls with an
// http:// upstream or in forward mode, peer_tls without an https:// peer,
// tls.client_ca while tls.client_verify is off. Valid, so no exit, but a
// warning naming the field (and the file and line) at startup and from
// --check-config, as `verify: false` gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { BIN, startProxy, tmpFile } from './lib.mjs';
import { certsForTests } from './tls-lib.mjs';

const C = certsForTests('tls-warnings');

const run = (args) => {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL' });
  if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(r.stderr)) throw new Error(`sanitizer report:\n${r.stderr}`);
  return r;
};
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const secret = () => tmpFile('peer.secret', 'a-long-shared-secret-for-the-tests\n');

test('--check-config warns about upstream_tls with an http:// upstream, naming file, line and field', () => {
  const f = tmpFile('w.yaml', `upstream: http://127.0.0.1:9\nupstream_tls:\n  sni: api.test\n  ca: ${C.ca.cert}\n`);
  const r = run(['--check-config', f]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`warning: ${esc(f)}:3: upstream_tls\\.sni: unused: the upstream is http:// \\(upstream_tls is for an https:// upstream\\)`));
  // one line per section, naming the first field the file set
  assert.equal(r.stderr.match(/upstream_tls\./g).length, 1);
});

test('upstream_tls in forward mode, peer_tls in reverse mode or with an http:// peer: warned about', () => {
  const fwd = tmpFile('f.yaml', `mode: forward\nupstream_tls:\n  ca: ${C.ca.cert}\n`);
  const a = run(['--check-config', fwd]);
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stderr, new RegExp(`warning: ${esc(fwd)}:3: upstream_tls\\.ca: unused in forward mode`));

  const rev = tmpFile('r.yaml', `upstream: http://127.0.0.1:9\npeer_tls:\n  ca: ${C.ca.cert}\n  cert: ${C.client.cert}\n  key: ${C.client.key}\n`);
  const b = run(['--check-config', rev]);
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stderr, new RegExp(`warning: ${esc(rev)}:3: peer_tls\\.ca: unused in reverse mode`));

  const plainPeer = tmpFile('p.yaml', `mode: forward\npeer:\n  url: http://127.0.0.1:9\n  id: edge-1\n  secret_file: ${secret()}\npeer_tls:\n  cert: ${C.client.cert}\n  key: ${C.client.key}\n`);
  const c = run(['--check-config', plainPeer]);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stderr, new RegExp(`warning: ${esc(plainPeer)}:7: peer_tls\\.cert: unused: the peer is http:// \\(peer_tls is for --peer https://\\.\\.\\.\\)`));

  const ca = tmpFile('c.yaml', `upstream: http://127.0.0.1:9\ntls:\n  client_ca: ${C.ca.cert}\n`);
  const d = run(['--check-config', ca]);
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stderr, new RegExp(`warning: ${esc(ca)}:3: tls\\.client_ca: unused while tls\\.client_verify is off`));
});

test('the startup log warns too: upstream_tls from the file, --upstream-ca from the flags, peer_tls with --peer http://', async (t) => {
  const f = tmpFile('s.yaml', `upstream_tls:\n  verify: true\n`);
  const p = await startProxy(['--upstream', 'http://127.0.0.1:9', '--config', f]);
  t.after(() => p.stop());
  assert.match(p.errors(), new RegExp(`\\[warn\\] ${esc(f)}:2: upstream_tls\\.verify: unused: the upstream is http://`));

  const q = await startProxy(['--upstream', 'http://127.0.0.1:9', '--upstream-ca', C.ca.cert]);
  t.after(() => q.stop());
  assert.match(q.errors(), /\[warn\] --upstream-ca: unused: the upstream is http:\/\//);

  const g = tmpFile('g.yaml', `peer_tls:\n  ca: ${C.ca.cert}\n`);
  const fwd = await startProxy(['--mode', 'forward', '--peer', 'http://127.0.0.1:9', '--peer-id', 'edge-1',
    '--peer-secret', secret(), '--config', g]);
  t.after(() => fwd.stop());
  assert.match(fwd.errors(), new RegExp(`\\[warn\\] ${esc(g)}:2: peer_tls\\.ca: unused: the peer is http://`));
});

test('no warning when the settings are used, or when the upstream is left to the flags', async (t) => {
  const used = tmpFile('u.yaml', `upstream: https://localhost\nupstream_tls:\n  ca: ${C.ca.cert}\n  sni: localhost\n`);
  const a = run(['--check-config', used]);
  assert.equal(a.status, 0, a.stderr);
  assert.doesNotMatch(a.stderr, /unused/);

  const peer = tmpFile('p.yaml', `mode: forward\npeer:\n  url: https://127.0.0.1:9\n  id: edge-1\n  secret_file: ${secret()}\npeer_tls:\n  ca: ${C.ca.cert}\n`);
  const b = run(['--check-config', peer]);
  assert.equal(b.status, 0, b.stderr);
  assert.doesNotMatch(b.stderr, /unused/);

  // no upstream in the file: --check-config stands one in, which is not the file's
  const later = tmpFile('l.yaml', `upstream_tls:\n  ca: ${C.ca.cert}\n`);
  const c = run(['--check-config', later]);
  assert.equal(c.status, 0, c.stderr);
  assert.doesNotMatch(c.stderr, /unused/);

  const verified = tmpFile('v.yaml', `tls:\n  client_ca: ${C.ca.cert}\n  client_verify: optional\n`);
  const p = await startProxy(['--upstream', 'http://127.0.0.1:9', '--tls-listen', '127.0.0.1:0',
    '--tls-cert', C.server.cert, '--tls-key', C.server.key, '--config', verified]);
  t.after(() => p.stop());
  assert.doesNotMatch(p.errors(), /unused/);
});
