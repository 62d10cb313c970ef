// TLS listener options an nginx user reaches for (issue 14, gaps):
// tls.session_tickets (ssl_session_tickets), tls.ciphers (ssl_ciphers, TLS
// 1.2) and tls.ciphersuites (TLS 1.3, ssl_conf_command Ciphersuites). A
// client sees each of them on the wire; a list OpenSSL cannot use stops
// the start naming file, line and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import tls from 'node:tls';
import { BIN, startOrigin, tmpFile } from './lib.mjs';
import { certsForTests, startTlsProxy } from './tls-lib.mjs';

const C = certsForTests('tls-options');

async function setup(t, yaml = '') {
  const origin = await startOrigin((req, res) => res.end('ok'));
  const p = await startTlsProxy(C, ['--upstream', `http://127.0.0.1:${origin.port}`], { yaml });
  t.after(async () => { await p.stop(); await origin.close(); });
  return p;
}

// One request over a new TLS connection. Resolves { status, sessions (the
// session/ticket events seen before the answer ended), reused, cipher } or
// { error }. The server sends its TLS 1.3 tickets right after the handshake,
// before any answer: once the answer is read, every ticket has arrived.
function tlsRequest(port, opts = {}) {
  return new Promise((resolve) => {
    const sessions = [];
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: fs.readFileSync(C.ca.cert), ...opts });
    s.on('session', (sess) => sessions.push(sess));
    let data = '';
    s.on('secureConnect', () => s.write('GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'));
    s.on('data', (d) => { data += d.toString('latin1'); });
    s.on('end', () => {
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]), sessions, reused: s.isSessionReused(), cipher: s.getCipher() });
      s.destroy();
    });
    s.on('error', (error) => resolve({ error }));
  });
}

for (const version of ['TLSv1.3', 'TLSv1.2']) {
  const v = { minVersion: version, maxVersion: version };
  test(`session_tickets: on by default, the next ${version} connection resumes`, async (t) => {
    const p = await setup(t);
    const first = await tlsRequest(p.tlsPort, v);
    assert.equal(first.status, 200);
    assert.ok(first.sessions.length > 0, 'a ticket came');
    const again = await tlsRequest(p.tlsPort, { ...v, session: first.sessions.at(-1) });
    assert.equal(again.status, 200);
    assert.equal(again.reused, true);
  });

  test(`session_tickets: false: no ${version} connection resumes`, async (t) => {
    const p = await setup(t, 'tls:\n  session_tickets: false\n');
    const first = await tlsRequest(p.tlsPort, v);
    assert.equal(first.status, 200);
    // no ticket (nor, without a session cache, a session id): nothing to resume with
    assert.equal(first.sessions.length, 0, 'no session to resume is given');
    for (const session of first.sessions) {
      const again = await tlsRequest(p.tlsPort, { ...v, session });
      assert.equal(again.status, 200);
      assert.equal(again.reused, false, 'a full handshake each time');
    }
  });
}

test('ciphers (TLS 1.2) and ciphersuites (TLS 1.3): only the listed ones are negotiated', async (t) => {
  const p = await setup(t, 'tls:\n  ciphers: ECDHE-ECDSA-AES128-GCM-SHA256\n  ciphersuites: TLS_AES_256_GCM_SHA384\n');
  const v13 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' };
  const v12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' };
  const a = await tlsRequest(p.tlsPort, v13);
  assert.equal(a.status, 200);
  assert.equal(a.cipher.standardName, 'TLS_AES_256_GCM_SHA384');
  const b = await tlsRequest(p.tlsPort, { ...v13, ciphers: 'TLS_AES_128_GCM_SHA256' });
  assert.ok(b.error, 'a TLS 1.3 suite not listed is refused');
  const c = await tlsRequest(p.tlsPort, v12);
  assert.equal(c.status, 200);
  assert.equal(c.cipher.name, 'ECDHE-ECDSA-AES128-GCM-SHA256');
  const d = await tlsRequest(p.tlsPort, { ...v12, ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
  assert.ok(d.error, 'a TLS 1.2 cipher not listed is refused');
  assert.match(p.errors(), /client 127\.0\.0\.1: TLS handshake failed: .*no shared cipher/);
});

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('a cipher list OpenSSL cannot use, an unknown TLS 1.3 suite, a bad boolean: exit 2 naming file, line and field', () => {
  const base = `upstream: http://127.0.0.1:1\nlisten: 127.0.0.1:0\ntls:\n  cert: ${C.server.cert}\n  key: ${C.server.key}\n`;
  const rows = [
    ['  ciphers: NOPE\n', 'tls.ciphers', /no cipher OpenSSL knows in 'NOPE'/],
    ['  ciphersuites: BOGUS\n', 'tls.ciphersuites', /'BOGUS': no cipher match/],
    // OpenSSL would skip the unknown name silently
    ['  ciphersuites: TLS_AES_256_GCM_SHA384:TLS_AES_512_GCM\n', 'tls.ciphersuites', /unknown TLS 1\.3 cipher suite 'TLS_AES_512_GCM'/],
    ['  session_tickets: maybe\n', 'tls.session_tickets', /invalid boolean 'maybe'/],
  ];
  for (const [extra, field, why] of rows) {
    const f = tmpFile('idem.yaml', base + extra);
    for (const args of [['--check-config', f], ['--config', f, '--workers', '1']]) {
      const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL' });
      assert.doesNotMatch(r.stderr, /AddressSanitizer|LeakSanitizer|runtime error:/);
      assert.equal(r.status, 2, `${field} ${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${esc(f)}:6: ${esc(field)}: `), r.stderr);
      assert.match(r.stderr, why, r.stderr);
    }
  }
});
