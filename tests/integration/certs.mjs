// Test certificates made at run time with the openssl command (nothing is
// committed, nothing expires under us): a CA and what it signs, plus the
// bad cases the TLS tests need (wrong name, expired, unknown CA, a key
// that does not match). EC P-256 keys: a full set takes well under a second.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function openssl(args, cwd) {
  try {
    return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')}: ${e.stderr ? e.stderr.toString() : e.message}`);
  }
}

function newKey(file) {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
}

// A self-signed CA certificate valid for ten years.
function makeCa(dir, name, cn) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  newKey(key);
  openssl(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${cn}`, '-days', '3650', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-out', cert]);
  return { cert, key };
}

// The extensions of a leaf: server (SANs, serverAuth) or client (clientAuth).
function leafExtensions(dir, name, sans, usage) {
  const ext = path.join(dir, `${name}.ext`);
  const lines = ['[v3]', 'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature', `extendedKeyUsage=${usage}`,
    'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid'];
  if (sans.length) lines.push(`subjectAltName=${sans.join(',')}`);
  fs.writeFileSync(ext, lines.join('\n') + '\n');
  return ext;
}

let serial = 1;

// A key and a certificate signed by ca, valid from now for 30 days.
function makeLeaf(dir, ca, name, cn, sans, usage = 'serverAuth') {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  const csr = path.join(dir, `${name}.csr`);
  newKey(key);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', csr]);
  const ext = leafExtensions(dir, name, sans, usage);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key,
    '-set_serial', String(1000 + serial++), '-days', '30', '-sha256',
    '-extfile', ext, '-extensions', 'v3', '-out', cert]);
  return { cert, key };
}

// A certificate whose validity ended in the past. `openssl x509 -req` (3.0)
// cannot set explicit dates; `openssl ca` can, with a minimal database.
function makeExpired(dir, ca, name, cn, sans) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  const csr = path.join(dir, `${name}.csr`);
  newKey(key);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', csr]);
  const ext = leafExtensions(dir, name, sans, 'serverAuth');
  const db = path.join(dir, `${name}.db`);
  fs.mkdirSync(db, { recursive: true });
  fs.writeFileSync(path.join(db, 'index.txt'), '');
  fs.writeFileSync(path.join(db, 'serial'), '2000\n');
  const conf = path.join(dir, `${name}.ca.cnf`);
  fs.writeFileSync(conf, [
    '[ca]', 'default_ca=testca', '[testca]',
    `dir=${db}`, 'database=$dir/index.txt', 'serial=$dir/serial', 'new_certs_dir=$dir',
    `certificate=${ca.cert}`, `private_key=${ca.key}`,
    'default_md=sha256', 'policy=anything', 'unique_subject=no', 'copy_extensions=none',
    '[anything]', 'commonName=supplied', ''].join('\n'));
  openssl(['ca', '-batch', '-config', conf, '-notext', '-in', csr, '-out', cert,
    '-startdate', '20200101000000Z', '-enddate', '20200201000000Z',
    '-extfile', ext, '-extensions', 'v3']);
  return { cert, key };
}

// Makes every file in dir (created if needed) and returns their paths:
//   ca                      { cert, key }   the CA the tests trust
//   server                  127.0.0.1 and localhost (SAN IP and DNS), signed by ca
//   other                   other.test (a second name, for SNI selection)
//   wildcard                *.wild.test (SNI by a leading wildcard label)
//   wrongName               wrong.test only, signed by ca
//   expired                 127.0.0.1 and localhost, valid only in January 2020
//   unknownCa               { cert, key } a second CA nobody trusts
//   unknownCaServer         127.0.0.1 and localhost, signed by unknownCa
//   client                  a client certificate (clientAuth), signed by ca
//   unknownCaClient         a client certificate (clientAuth), signed by unknownCa
//   mismatchedKey           a key that matches none of the certificates
export function makeCerts(dir) {
  fs.mkdirSync(dir, { recursive: true });
  serial = 1;
  const local = ['DNS:localhost', 'IP:127.0.0.1'];
  const ca = makeCa(dir, 'ca', 'idemcache test CA');
  const unknownCa = makeCa(dir, 'unknown-ca', 'idemcache unknown CA');
  const out = {
    dir,
    ca,
    server: makeLeaf(dir, ca, 'server', 'localhost', local),
    other: makeLeaf(dir, ca, 'other', 'other.test', ['DNS:other.test']),
    wildcard: makeLeaf(dir, ca, 'wildcard', '*.wild.test', ['DNS:*.wild.test']),
    wrongName: makeLeaf(dir, ca, 'wrong-name', 'wrong.test', ['DNS:wrong.test']),
    expired: makeExpired(dir, ca, 'expired', 'localhost', local),
    unknownCa,
    unknownCaServer: makeLeaf(dir, unknownCa, 'unknown-ca-server', 'localhost', local),
    client: makeLeaf(dir, ca, 'client', 'idemcache test client', [], 'clientAuth'),
    unknownCaClient: makeLeaf(dir, unknownCa, 'unknown-ca-client', 'idemcache stranger', [], 'clientAuth'),
    mismatchedKey: path.join(dir, 'mismatched.key'),
  };
  newKey(out.mismatchedKey);
  return out;
}
