// TLS configuration (issue 14): tls, upstream_tls, peer_tls and their flags.
// A certificate, key or CA that cannot be used stops the start (exit 2)
// naming the field, and the file and line when the file set it; the
// certificates are made at run time by certs.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, startProxy, freePort } from './lib.mjs';
import { makeCerts } from './certs.mjs';

const top = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-tls-config-'));
const certs = makeCerts(path.join(top, 'certs'));

// A run that should stop at once; the timeout turns a start into a failure
// instead of a hang.
const run = (args, opts = {}) => {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL', ...opts });
  if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(r.stderr)) throw new Error(`sanitizer report:\n${r.stderr}`);
  return r;
};

// A config file in a directory of its own; returns its path.
let nfile = 0;
function configFile(text, dir = path.join(top, `c${nfile++}`)) {
  fs.mkdirSync(dir, { recursive: true });
  const f = path.join(dir, 'idem.yaml');
  fs.writeFileSync(f, text);
  return f;
}

// Both ways a file is read: --check-config, and a real start with the
// listener and upstream given as flags.
function refusedBoth(f, want) {
  for (const args of [['--check-config', f],
    ['--config', f, '--listen', '127.0.0.1:0', '--upstream', 'http://127.0.0.1:1', '--workers', '1']]) {
    const r = run(args);
    assert.equal(r.status, 2, `${args[0]}: status ${r.status}, stderr: ${r.stderr}`);
    assert.match(r.stderr, want, args[0]);
    assert.doesNotMatch(r.stderr, /listening on/, args[0]);
  }
}

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// A path open() accepts and read() refuses: a directory. Root reads any
// file whatever its mode, so chmod 000 is no test there.
function unreadable() {
  if (process.getuid && process.getuid() !== 0) {
    const p = path.join(top, 'unreadable.pem');
    fs.copyFileSync(certs.server.key, p);
    fs.chmodSync(p, 0);
    return { path: p, why: /cannot open '[^']*': Permission denied/ };
  }
  const d = path.join(top, 'a-directory.pem');
  fs.mkdirSync(d, { recursive: true });
  return { path: d, why: /cannot read '[^']*': Is a directory/ };
}

test('a certificate or key file that cannot be used: exit 2 naming file, line and field', () => {
  const bad = unreadable();
  const rows = [
    // [yaml, line, field, reason]
    [`tls:\n  cert: ${path.join(top, 'missing.pem')}\n  key: ${certs.server.key}\n`, 2, 'tls.cert',
      /cannot open '[^']*missing\.pem': No such file or directory/],
    [`tls:\n  cert: ${certs.server.cert}\n  key: ${path.join(top, 'missing.key')}\n`, 3, 'tls.key',
      /cannot open '[^']*missing\.key': No such file or directory/],
    [`tls:\n  cert: ${certs.server.cert}\n  key: ${bad.path}\n`, 3, 'tls.key', bad.why],
    [`tls:\n  cert: ${bad.path}\n  key: ${certs.server.key}\n`, 2, 'tls.cert', bad.why],
    [`tls:\n  cert: ${certs.server.key}\n  key: ${certs.server.key}\n`, 2, 'tls.cert', /no PEM certificate in it/],
    [`tls:\n  cert: ${certs.server.cert}\n  key: ${certs.server.cert}\n`, 3, 'tls.key', /no PEM private key in it/],
    [`tls:\n  cert: ${certs.server.cert}\n  key: ${certs.mismatchedKey}\n`, 3, 'tls.key',
      new RegExp(`'${esc(certs.mismatchedKey)}' does not match the certificate in '${esc(certs.server.cert)}'`)],
    [`tls:\n  cert: ${certs.server.cert}\n  key: ${certs.server.key}\n  certs:\n    - cert: ${certs.other.cert}\n      key: ${certs.other.key}\n` +
      `    - cert: ${certs.wildcard.cert}\n      key: ${certs.mismatchedKey}\n`, 8, 'tls.certs[1].key', /does not match the certificate/],
    [`tls:\n  certs:\n    - cert: ${path.join(top, 'gone.pem')}\n      key: ${certs.other.key}\n`, 3, 'tls.certs[0].cert', /cannot open/],
    [`upstream_tls:\n  ca: ${path.join(top, 'no-ca.pem')}\n`, 2, 'upstream_tls.ca', /cannot open '[^']*no-ca\.pem'/],
    [`upstream_tls:\n  ca: ${certs.ca.key}\n`, 2, 'upstream_tls.ca', /no PEM certificate in it/],
    [`upstream_tls:\n  cert: ${certs.client.cert}\n  key: ${certs.mismatchedKey}\n`, 3, 'upstream_tls.key', /does not match the certificate/],
    [`peer_tls:\n  ca: ${bad.path}\n`, 2, 'peer_tls.ca', bad.why],
    [`peer_tls:\n  cert: ${certs.client.key}\n  key: ${certs.client.key}\n`, 2, 'peer_tls.cert', /no PEM certificate in it/],
  ];
  for (const [yaml, line, field, why] of rows) {
    const f = configFile(yaml);
    refusedBoth(f, new RegExp(`${esc(f)}:${line}: ${esc(field)}: .*${why.source}`));
  }
});

test('the flags name themselves: --tls-cert, --tls-key, --upstream-ca, --tls-listen', () => {
  const rows = [
    [['--tls-listen', '127.0.0.1:0', '--tls-cert', path.join(top, 'nope.pem'), '--tls-key', certs.server.key],
      /idemcache: --tls-cert: cannot open '[^']*nope\.pem': No such file or directory/],
    [['--tls-listen', '127.0.0.1:0', '--tls-cert', certs.server.cert, '--tls-key', certs.mismatchedKey],
      /idemcache: --tls-key: '[^']*mismatched\.key' does not match the certificate/],
    [['--tls-listen', '127.0.0.1:0', '--tls-cert', certs.server.cert, '--tls-key', certs.server.cert],
      /idemcache: --tls-key: '[^']*': no PEM private key in it/],
    [['--upstream-ca', certs.server.key], /idemcache: --upstream-ca: '[^']*': no PEM certificate in it/],
    [['--tls-listen', '127.0.0.1:0'], /idemcache: tls\.listen: needs a certificate and its key \(tls\.cert and tls\.key, or --tls-cert FILE --tls-key FILE\)/],
    [['--tls-listen', '127.0.0.1:0', '--tls-cert', certs.server.cert], /idemcache: --tls-cert: set without --tls-key/],
    [['--tls-listen', 'nowhere'], /idemcache: --tls-listen: invalid address 'nowhere' \(expected HOST:PORT\)/],
  ];
  for (const [flags, want] of rows) {
    const r = run(['--listen', '127.0.0.1:0', '--upstream', 'https://127.0.0.1:1', '--workers', '1', ...flags]);
    assert.equal(r.status, 2, `${flags.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want, flags.join(' '));
  }
  // a flag overrides the file's value, and its path is the caller's
  const f = configFile(`tls:\n  listen: 127.0.0.1:0\n  cert: ${certs.server.cert}\n  key: ${certs.mismatchedKey}\n`);
  assert.equal(run(['--check-config', f]).status, 2);
  const ok = run(['--check-config', f, '--tls-key', path.relative(top, certs.server.key)], { cwd: top });
  assert.equal(ok.status, 0, ok.stderr);
});

test('tls.listen without a certificate, a cert without its key, a TLS port shared with listen: refused', () => {
  const rows = [
    ['listen: 127.0.0.1:8080\ntls:\n  listen: 127.0.0.1:8443\n', /:3: tls\.listen: needs a certificate and its key/],
    [`tls:\n  listen: 127.0.0.1:8443\n  cert: ${certs.server.cert}\n`, /:3: tls\.cert: set without tls\.key/],
    [`tls:\n  listen: 127.0.0.1:8443\n  key: ${certs.server.key}\n`, /:2: tls\.listen: needs a certificate/],
    [`listen: 127.0.0.1:8080\ntls:\n  listen: 127.0.0.1:8080\n  cert: ${certs.server.cert}\n  key: ${certs.server.key}\n`,
      /:3: tls\.listen: 127\.0\.0\.1:8080 overlaps listen 127\.0\.0\.1:8080: one port cannot take both TLS and plaintext/],
    [`admin: 127.0.0.1:8443\ntls:\n  listen: 127.0.0.1:8443\n  cert: ${certs.server.cert}\n  key: ${certs.server.key}\n`,
      /:1: admin: 127\.0\.0\.1:8443 overlaps tls\.listen 127\.0\.0\.1:8443/],
  ];
  for (const [yaml, want] of rows) {
    const f = configFile(yaml);
    const r = run(['--check-config', f]);
    assert.equal(r.status, 2, `${yaml}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(esc(f) + want.source));
  }
});

test('tls.min_version: TLSv1.2 or TLSv1.3, anything else refused with its line', () => {
  for (const v of ['TLSv1.1', 'TLSv1.0', 'SSLv3', '1.2', 'tlsv1.3']) {
    const f = configFile(`# versions\ntls:\n  min_version: ${v}\n`);
    const r = run(['--check-config', f]);
    assert.equal(r.status, 2, v);
    assert.match(r.stderr, new RegExp(`${esc(f)}:3: tls\\.min_version: invalid version '${esc(v)}' \\(expected TLSv1\\.2 or TLSv1\\.3\\)`));
  }
  for (const v of ['TLSv1.2', 'TLSv1.3']) {
    const f = configFile(`tls:\n  min_version: ${v}\n  cert: ${certs.server.cert}\n  key: ${certs.server.key}\n`);
    const r = run(['--check-config', f]);
    assert.equal(r.status, 0, `${v}: ${r.stderr}`);
  }
});

test('verify: false is warned about by --check-config and in the startup log', async (t) => {
  const f = configFile(`upstream: https://localhost\nupstream_tls:\n  ca: ${certs.ca.cert}\n  verify: false\npeer_tls:\n  verify: false\n`);
  const r = run(['--check-config', f]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`warning: ${esc(f)}:4: upstream_tls\\.verify: false: the certificate of the origin is not checked`));
  assert.match(r.stderr, new RegExp(`warning: ${esc(f)}:6: peer_tls\\.verify: false: the certificate of the reverse peer is not checked`));

  const p = await startProxy(['--config', f]);
  t.after(() => p.stop());
  assert.match(p.errors(), new RegExp(`\\[warn\\] ${esc(f)}:4: upstream_tls\\.verify: false`));
  assert.match(p.errors(), /upstream https:\/\/localhost:443/);

  // verify left at true (or set so): no warning
  const quiet = configFile(`upstream: https://localhost\nupstream_tls:\n  verify: true\n`);
  const q = run(['--check-config', quiet]);
  assert.equal(q.status, 0, q.stderr);
  assert.doesNotMatch(q.stderr, /verify/);
});

test('--upstream https://HOST is accepted (port 443 by default); ftp:// is refused clearly', async (t) => {
  const p = await startProxy(['--upstream', 'https://localhost', '--upstream-ca', certs.ca.cert]);
  t.after(() => p.stop());
  assert.match(p.errors(), /\[info\] upstream https:\/\/localhost:443\n/);
  const q = await startProxy(['--upstream', 'https://127.0.0.1:8443/']);
  t.after(() => q.stop());
  assert.match(q.errors(), /\[info\] upstream https:\/\/127\.0\.0\.1:8443\n/);

  const r = run(['--listen', '127.0.0.1:0', '--upstream', 'ftp://h']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /idemcache: --upstream: invalid URL 'ftp:\/\/h' \(expected http:\/\/HOST\[:PORT\] or https:\/\/HOST\[:PORT\]\)/);
  const f = configFile('listen: 127.0.0.1:0\nupstream: ftp://h\n');
  const s = run(['--check-config', f]);
  assert.equal(s.status, 2);
  assert.match(s.stderr, new RegExp(`${esc(f)}:2: upstream: invalid upstream 'ftp://h' \\(expected http://HOST\\[:PORT\\] or https://HOST\\[:PORT\\]\\)`));
  const peer = run(['--listen', '127.0.0.1:0', '--mode', 'forward', '--peer', 'ftp://h:1']);
  assert.equal(peer.status, 2);
  assert.match(peer.stderr, /--peer: invalid URL 'ftp:\/\/h:1' \(expected http:\/\/HOST:PORT or https:\/\/HOST:PORT\)/);
});

test('relative certificate paths resolve against the config file, and TLS listeners are logged', async (t) => {
  // the file and its certs/ directory, started from another directory
  const dir = path.join(top, 'relative');
  fs.mkdirSync(path.join(dir, 'pem'), { recursive: true });
  for (const [from, to] of [[certs.server.cert, 'server.pem'], [certs.server.key, 'server.key'],
    [certs.other.cert, 'other.pem'], [certs.other.key, 'other.key'], [certs.ca.cert, 'ca.pem'],
    [certs.client.cert, 'client.pem'], [certs.client.key, 'client.key']])
    fs.copyFileSync(from, path.join(dir, 'pem', to));
  const f = configFile('upstream: https://localhost\n' +
    'tls:\n  listen: [127.0.0.1:0]\n  cert: pem/server.pem\n  key: pem/server.key\n' +
    '  certs:\n    - { cert: pem/other.pem, key: pem/other.key }\n  min_version: TLSv1.3\n' +
    'upstream_tls:\n  ca: pem/ca.pem\n  sni: localhost\n  cert: pem/client.pem\n  key: pem/client.key\n' +
    'peer_tls:\n  ca: pem/ca.pem\ntimeouts:\n  tls_handshake: 3s\n', dir);
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-cwd-'));
  const r = run(['--check-config', f], { cwd: elsewhere });
  assert.equal(r.status, 0, r.stderr);
  // the same file moved away from its certificates no longer finds them
  const lonely = configFile(fs.readFileSync(f, 'utf8'));
  const m = run(['--check-config', lonely], { cwd: dir });
  assert.equal(m.status, 2);
  assert.match(m.stderr, new RegExp(`${esc(lonely)}:4: tls\\.cert: cannot open '${esc(path.dirname(lonely))}/pem/server\\.pem'`));

  const p = await startProxy(['--config', f]);
  t.after(() => p.stop());
  assert.match(p.errors(), /\[info\] TLS listener 127\.0\.0\.1:0\n/);
});

// ---- the TLS listener, as a client sees it ----------------------------

// openssl s_client against a TLS port: { ok, out } (stdout and stderr).
function sClient(port, args, input = '') {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', certs.ca.cert,
    '-verify_return_error', ...args], { input, encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL' });
  const out = `${r.stdout}\n${r.stderr}`;
  return { ok: r.status === 0 && /Verify return code: 0 \(ok\)/.test(out), out };
}

async function startTls(t, extra = []) {
  const tlsPort = await freePort();
  const p = await startProxy(['--upstream', 'http://127.0.0.1:1',
    '--tls-listen', `127.0.0.1:${tlsPort}`, ...extra]);
  t.after(() => p.stop());
  return tlsPort;
}

test('SNI picks the certificate whose name matches; an unknown or absent name gets the default', async (t) => {
  const f = configFile(`tls:\n  cert: ${certs.server.cert}\n  key: ${certs.server.key}\n  certs:\n` +
    `    - { cert: ${certs.other.cert}, key: ${certs.other.key} }\n    - { cert: ${certs.wildcard.cert}, key: ${certs.wildcard.key} }\n`);
  const port = await startTls(t, ['--config', f]);
  const rows = [
    ['other.test', /subject=CN = other\.test/],
    ['a.wild.test', /subject=CN = \*\.wild\.test/],
    ['unknown.test', /subject=CN = localhost/],
    [null, /subject=CN = localhost/],
  ];
  for (const [sni, want] of rows) {
    const r = sClient(port, sni ? ['-servername', sni] : ['-noservername']);
    assert.match(r.out, want, `SNI ${sni}: ${r.out}`);
    assert.match(r.out, /Verify return code: 0 \(ok\)/, `SNI ${sni}`);
  }
  // ALPN: h2 first (h2.enabled, the default), http/1.1 for a client without it
  assert.match(sClient(port, ['-alpn', 'h2,http/1.1']).out, /ALPN protocol: h2/);
  assert.match(sClient(port, ['-alpn', 'http/1.1']).out, /ALPN protocol: http\/1\.1/);
});

test('min_version: TLS 1.1 refused at TLSv1.2, TLS 1.2 refused at TLSv1.3', async (t) => {
  const flags = ['--tls-cert', certs.server.cert, '--tls-key', certs.server.key];
  const p12 = await startTls(t, flags);
  // SECLEVEL=0 so that the client really offers TLS 1.1 and the refusal is the server's
  const old = sClient(p12, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
  assert.equal(old.ok, false, old.out);
  assert.match(old.out, /alert protocol version|unsupported protocol|no protocols available/i);
  const r12 = sClient(p12, ['-tls1_2']);
  assert.ok(r12.ok, r12.out);
  assert.match(r12.out, /TLSv1\.2/);

  const f = configFile(`tls:\n  min_version: TLSv1.3\n`);
  const p13 = await startTls(t, ['--config', f, ...flags]);
  const refused = sClient(p13, ['-tls1_2']);
  assert.equal(refused.ok, false, refused.out);
  assert.match(refused.out, /alert protocol version/i);
  const r13 = sClient(p13, ['-tls1_3']);
  assert.ok(r13.ok, r13.out);
  assert.match(r13.out, /TLSv1\.3/);
});

test('a session ticket resumes the next connection', async (t) => {
  const port = await startTls(t, ['--tls-cert', certs.server.cert, '--tls-key', certs.server.key]);
  const sess = path.join(top, 'session.pem');
  // A request, and -ign_eof to read until the answer's close: the tickets
  // come after the handshake, and a client that leaves at once may miss them.
  const first = sClient(port, ['-sess_out', sess, '-servername', 'localhost', '-ign_eof'],
    'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n');
  assert.ok(first.ok, first.out);
  assert.match(first.out, /HTTP\/1\.1 502/);
  assert.match(first.out, /^New, TLSv1\.3/m);
  const again = sClient(port, ['-sess_in', sess, '-servername', 'localhost']);
  assert.match(again.out, /^Reused, TLSv1\.3/m, again.out);
});

// proxy.host: upstream sends the upstream URL's authority; for https the
// default port is 443 (RFC 9110 §4.2.2), left out as 80 is for http. An
// origin on 127.0.0.1:443 needs the port free (and root): skipped if not.
test('proxy.host: upstream with https://localhost sends Host: localhost (443 left out)', async (t) => {
  const https = await import('node:https');
  const server = https.createServer({ key: fs.readFileSync(certs.server.key), cert: fs.readFileSync(certs.server.cert) },
    (req, res) => res.end(`host=${req.headers.host}`));
  const listening = await new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(443, '127.0.0.1', () => resolve(true));
  });
  if (!listening) {
    t.skip('127.0.0.1:443 is not available');
    return;
  }
  t.after(() => new Promise((r) => server.close(r)));
  const f = configFile('proxy:\n  host: upstream\n');
  const p = await startProxy(['--config', f, '--upstream', 'https://localhost', '--upstream-ca', certs.ca.cert]);
  t.after(() => p.stop());
  const { get } = await import('./lib.mjs');
  const r = await get(p.port, '/h', { headers: { Host: 'client.example' } });
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'host=localhost');
});
