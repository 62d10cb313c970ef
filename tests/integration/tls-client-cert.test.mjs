// Client certificates on the TLS listeners (issue 14, gaps): tls.client_ca
// and tls.client_verify (off | optional | require, as nginx's
// ssl_verify_client). A handshake without a certificate chained to
// client_ca is refused where require says so, a bad one always, with the
// reason in the log; the forward side's peer_tls certificate now proves who
// it is. Certificates are made at run time by certs.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { BIN, startProxy, startOrigin, freePort, tmpFile, get, sleep } from './lib.mjs';
import { certsForTests, startTlsProxy } from './tls-lib.mjs';

const C = certsForTests('client-cert');

function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], { encoding: 'latin1' }, (e, out, err) => {
      resolve({ code: e ? (e.code ?? 1) : 0, out, err });
    });
  });
}

// curl through the TLS listener with an optional client certificate
// ({ cert, key } from certs.mjs): { code, status }.
async function curlTls(port, id) {
  const who = id ? ['--cert', id.cert, '--key', id.key] : [];
  // HTTP/1.1: with h2 curl may report the close before the alert
  const r = await curl(['--http1.1', '--cacert', C.ca.cert, ...who, '-o', '/dev/null', '-w', '%{http_code}',
    `https://127.0.0.1:${port}/x`]);
  return { code: r.code, status: r.out, err: r.err };
}

// node's https client: resolves { status } or { error }.
function nodeGet(port, id) {
  return new Promise((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/x', agent: false, ca: fs.readFileSync(C.ca.cert),
      ...(id ? { cert: fs.readFileSync(id.cert), key: fs.readFileSync(id.key) } : {}) }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
    });
    req.on('error', (error) => resolve({ error }));
  });
}

async function until(fn) {
  while (!fn()) await sleep(20);
}

const verifyYaml = (mode) => `tls:\n  client_ca: ${C.ca.cert}\n  client_verify: ${mode}\n`;

async function setup(t, mode) {
  const origin = await startOrigin((req, res) => res.end('ok'));
  const p = await startTlsProxy(C, ['--upstream', `http://127.0.0.1:${origin.port}`], { yaml: verifyYaml(mode) });
  t.after(async () => { await p.stop(); await origin.close(); });
  return { origin, p };
}

test('client_verify require: a certificate from client_ca passes; none, or one from another CA, is refused and logged', async (t) => {
  const { origin, p } = await setup(t, 'require');
  const good = await curlTls(p.tlsPort, C.client);
  assert.equal(good.status, '200', good.err);
  const goodNode = await nodeGet(p.tlsPort, C.client);
  assert.equal(goodNode.status, 200, String(goodNode.error));
  assert.equal(origin.seen.length, 2);

  const none = await curlTls(p.tlsPort, null);
  assert.notEqual(none.status, '200');
  assert.match(none.err, /alert certificate required/);
  await until(() => /client 127\.0\.0\.1: TLS handshake failed: no client certificate \(tls\.client_verify: require\)/.test(p.errors()));
  const noneNode = await nodeGet(p.tlsPort, null);
  assert.ok(noneNode.error, 'node without a certificate is refused');

  const stranger = await curlTls(p.tlsPort, C.unknownCaClient);
  assert.notEqual(stranger.status, '200');
  assert.match(stranger.err, /alert unknown ca/);
  await until(() => /client 127\.0\.0\.1: TLS handshake failed: client certificate verify failed: unable to get local issuer certificate/.test(p.errors()));
  const strangerNode = await nodeGet(p.tlsPort, C.unknownCaClient);
  assert.ok(strangerNode.error, 'node with another CA\'s certificate is refused');

  // a server certificate (serverAuth only) is no client certificate
  const wrongUse = await curlTls(p.tlsPort, C.server);
  assert.notEqual(wrongUse.status, '200');
  await until(() => /client certificate verify failed: unsuitable certificate purpose/.test(p.errors()));
  assert.equal(origin.seen.length, 2, 'nothing refused reached the origin');
});

test('client_verify optional: none is fine, a good one is fine, one from another CA is refused', async (t) => {
  const { origin, p } = await setup(t, 'optional');
  assert.equal((await curlTls(p.tlsPort, null)).status, '200');
  assert.equal((await curlTls(p.tlsPort, C.client)).status, '200');
  assert.equal((await nodeGet(p.tlsPort, null)).status, 200);
  const stranger = await curlTls(p.tlsPort, C.unknownCaClient);
  assert.notEqual(stranger.status, '200');
  await until(() => /TLS handshake failed: client certificate verify failed: unable to get local issuer certificate/.test(p.errors()));
  assert.equal(origin.seen.length, 3);
});

test('client_verify off (the default): no certificate is asked for, even with client_ca set', async (t) => {
  const origin = await startOrigin((req, res) => res.end('ok'));
  const p = await startTlsProxy(C, ['--upstream', `http://127.0.0.1:${origin.port}`],
    { yaml: `tls:\n  client_ca: ${C.ca.cert}\n` });
  t.after(async () => { await p.stop(); await origin.close(); });
  // a stranger's certificate is not even looked at
  assert.equal((await curlTls(p.tlsPort, C.unknownCaClient)).status, '200');
  assert.equal((await curlTls(p.tlsPort, null)).status, '200');
});

// The peer pair: the reverse side requires a client certificate from
// client_ca; the forward side presents peer_tls.cert/key (or not).
async function peerPair(t, peerTls) {
  const secret = tmpFile('peer.secret', 'a-long-shared-secret-for-the-tests\n');
  const origin = await startOrigin((req, res) => res.end('from the origin'));
  const reverse = await startTlsProxy(C, ['--upstream', `http://127.0.0.1:${origin.port}`], {
    yaml: `${verifyYaml('require')}peers:\n  - id: edge-1\n    secret_file: ${secret}\n`,
  });
  const forward = await startProxy(['--mode', 'forward', '--peer', `https://127.0.0.1:${reverse.tlsPort}`,
    '--peer-id', 'edge-1', '--peer-secret', secret,
    '--config', tmpFile('fwd.yaml', `peer_tls:\n  ca: ${C.ca.cert}\n${peerTls}`)]);
  t.after(async () => {
    await forward.stop();
    await reverse.stop();
    await origin.close();
  });
  return { origin, reverse, forward };
}

test('the peer link with client_verify require: the forward side\'s peer_tls certificate gets in', async (t) => {
  const { origin, reverse, forward } = await peerPair(t, `  cert: ${C.client.cert}\n  key: ${C.client.key}\n`);
  const r = await get(forward.port, 'http://origin.test/doc');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'from the origin');
  assert.equal(origin.seen.length, 1);
  assert.doesNotMatch(reverse.errors() + forward.errors(), /TLS handshake failed/);
});

test('the peer link with client_verify require: no peer_tls certificate is refused', async (t) => {
  const { origin, reverse, forward } = await peerPair(t, '');
  const r = await get(forward.port, 'http://origin.test/doc');
  assert.equal(r.status, 502);
  assert.equal(origin.seen.length, 0);
  await until(() => /TLS handshake failed: no client certificate \(tls\.client_verify: require\)/.test(reverse.errors()));
  // the forward side's log says why too: the reverse side's alert
  await until(() => /\[warn\] upstream 127\.0\.0\.1:\d+: .*alert certificate required/.test(forward.errors()));
});

test('the peer link with client_verify require: a certificate from another CA is refused', async (t) => {
  const { origin, reverse, forward } = await peerPair(t,
    `  cert: ${C.unknownCaClient.cert}\n  key: ${C.unknownCaClient.key}\n`);
  const r = await get(forward.port, 'http://origin.test/doc');
  assert.equal(r.status, 502);
  assert.equal(origin.seen.length, 0);
  await until(() => /TLS handshake failed: client certificate verify failed: unable to get local issuer certificate/.test(reverse.errors()));
  await until(() => /\[warn\] upstream 127\.0\.0\.1:\d+: .*alert unknown ca/.test(forward.errors()));
});

// ---- configuration errors: exit 2 naming file, line and field ----------

const run = (args) => {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL' });
  if (/AddressSanitizer|LeakSanitizer|runtime error:/.test(r.stderr)) throw new Error(`sanitizer report:\n${r.stderr}`);
  return r;
};
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('client_verify without client_ca, an unreadable client_ca, an unknown value: exit 2 naming file, line and field', async () => {
  const tlsPort = await freePort();
  const base = `upstream: http://127.0.0.1:1\ntls:\n  listen: 127.0.0.1:${tlsPort}\n  cert: ${C.server.cert}\n  key: ${C.server.key}\n`;
  const dir = path.dirname(tmpFile('x', ''));
  const rows = [
    [`${base}  client_verify: require\n`, 6, 'tls.client_verify', /require needs tls\.client_ca/],
    [`${base}  client_verify: optional\n`, 6, 'tls.client_verify', /optional needs tls\.client_ca/],
    [`${base}  client_verify: require\n  client_ca: ${dir}/absent.pem\n`, 7, 'tls.client_ca', /cannot open '[^']*absent\.pem': No such file or directory/],
    [`${base}  client_verify: require\n  client_ca: ${dir}\n`, 7, 'tls.client_ca', /cannot read '[^']*': Is a directory/],
    [`${base}  client_verify: require\n  client_ca: ${C.client.key}\n`, 7, 'tls.client_ca', /no PEM certificate in it/],
    [`${base}  client_verify: yes\n`, 6, 'tls.client_verify', /invalid value 'yes' \(expected off, optional or require\)/],
  ];
  for (const [text, line, field, why] of rows) {
    const f = tmpFile('idem.yaml', text);
    for (const args of [['--check-config', f], ['--config', f, '--workers', '1']]) {
      const r = run(args);
      assert.equal(r.status, 2, `${field} ${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${esc(f)}:${line}: ${esc(field)}: `), `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, why, args[0]);
      assert.doesNotMatch(r.stderr, /listening on/);
    }
  }
});
