// What the TLS test files share: their certificates, made before a file's
// tests and removed after them, and idemcache with a TLS listener.
import { before, after } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCerts } from './certs.mjs';
import { startProxy, freePort, tmpFile } from './lib.mjs';

// The object is filled in by `before`, so read it inside tests only.
export function certsForTests(label) {
  const certs = {};
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `idem-${label}-`));
    Object.assign(certs, makeCerts(path.join(dir, 'certs')));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return certs;
}

// idemcache with a TLS listener on a free port (p.tlsPort), the default
// certificate from `certs`, and an optional YAML file.
export async function startTlsProxy(certs, args = [], { yaml = '' } = {}) {
  const tlsPort = await freePort();
  const extra = yaml ? ['--config', tmpFile('tls-proxy.yaml', yaml)] : [];
  const p = await startProxy(['--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', certs.server.cert,
    '--tls-key', certs.server.key, ...extra, ...args]);
  p.tlsPort = tlsPort;
  return p;
}
