// Command line and configuration file handling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, ROOT, tmpFile, startProxy, startOrigin, get, freePort } from './lib.mjs';

const run = (...args) => spawnSync(BIN, args, { encoding: 'utf8' });

test('--version and --help', () => {
  assert.match(run('--version').stdout, /^idemcache \d+\.\d+\.\d+/);
  const h = run('--help');
  assert.equal(h.status, 0);
  for (const f of ['--listen', '--upstream', '--mode', '--config', '--workers', '--check-config']) assert.ok(h.stdout.includes(f));
  assert.equal(run('--bogus').status, 2);
});

test('--check-config accepts the example file', () => {
  const r = run('--check-config', `${ROOT}/examples/idemcache.yaml`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ok/);
});

test('a bad file is refused naming file, line and field', () => {
  const f = tmpFile('bad.yaml', 'mode: reverse\nlimits:\n  header_count: 100\n  request_line: lots\n');
  for (const args of [['--check-config', f], ['--config', f, '--listen', '127.0.0.1:1', '--upstream', 'http://127.0.0.1:2']]) {
    const r = run(...args);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${f}:4: limits\\.request_line: invalid size 'lots'`));
  }
  const missing = run('--check-config', '/nonexistent/idem.yaml');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /\/nonexistent\/idem\.yaml: cannot open/);
});

test('flags override the file', async () => {
  const origin = await startOrigin((req, res) => res.end('from-flag-upstream'));
  const f = tmpFile('c.yaml', 'upstream: http://127.0.0.1:1\nworkers: 1\n');
  const p = await startProxy(['--config', f, '--upstream', `http://127.0.0.1:${origin.port}`]);
  assert.equal((await get(p.port, '/')).body.toString(), 'from-flag-upstream');
  await p.stop();
  await origin.close();
});

test('several workers share the port (SO_REUSEPORT)', async () => {
  const origin = await startOrigin((req, res) => res.end('ok'));
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`], { workers: 2 });
  // One request at a time, each on a new client connection: one worker alone
  // would send them all on its one pooled upstream connection; each worker
  // has a pool of its own, so two upstream connections show both at work
  // (the kernel spreads 20 connections over both listeners but for 2^-19).
  for (let i = 0; i < 20; i++) {
    const r = await get(p.port, `/${i}`, { headers: { Connection: 'close' } });
    assert.equal(r.status, 200);
  }
  assert.equal(origin.seen.length, 20);
  assert.ok(new Set(origin.seen.map((s) => s.socket)).size >= 2, 'both workers accepted connections');
  assert.equal((await p.stop()).code, 0);
  await origin.close();
});

test('reverse mode without an upstream is a clear error', () => {
  const r = run('--listen', '127.0.0.1:1');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /upstream: required in reverse mode/);
});

test('a wrong command line says what was wrong, then the usage, exit 2', () => {
  const cases = [
    [['--listne', '127.0.0.1:1'], "unknown option '--listne' (did you mean --listen?)"],
    [['--upstream', 'http://127.0.0.1:1', '--listen'], '--listen needs HOST:PORT'],
    [['--config'], '--config needs FILE'],
    [['idem.yaml'], "unexpected argument 'idem.yaml' (use --config FILE)"],
    [['--frobnicate'], "unknown option '--frobnicate'"],
  ];
  for (const [args, msg] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, args.join(' '));
    const [first, ...rest] = r.stderr.split('\n');
    assert.equal(first, `idemcache: ${msg}`);
    assert.match(rest.join('\n'), /^usage: idemcache \[options\]\n(.|\n)*--listen HOST:PORT/);
    assert.equal(r.stdout, '');
  }
  assert.doesNotMatch(run('--frobnicate').stderr, /did you mean/, 'no far-fetched suggestion');
});

test('-h and -v', () => {
  const h = run('-h');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^usage: idemcache/);
  const v = run('-v');
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^idemcache \d+\.\d+\.\d+\n$/);
});

test('--check-config warns about ignored or ineffective values and opens the log paths', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-chk-'));
  const access = path.join(dir, 'access.log');
  const f = tmpFile('w.yaml', `mode: forward\nupstream: http://127.0.0.1:9\ncache:\n  memory_size: 1MiB\nlog:\n  access: ${access}\n`);
  const r = run('--check-config', f);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /: ok\n$/);
  assert.match(r.stderr, new RegExp(`warning: ${f}: upstream: ignored in forward mode`));
  assert.match(r.stderr, /warning: .*: listen: none set; --listen HOST:PORT is needed at startup/);
  assert.match(r.stderr, /warning: .*: cache\.max_object_size 8 MiB is more than one cache shard holds \(cache\.memory_size\/16 = 64 KiB\)/);
  assert.ok(fs.existsSync(access), 'the access log was created, as nginx -t does');
  // a clean file warns about nothing
  const clean = tmpFile('c.yaml', 'listen: ["127.0.0.1:8080"]\nupstream: http://127.0.0.1:9000\n');
  assert.equal(run('--check-config', clean).stderr, '');
  // a log path that cannot be opened fails the check
  const bad = tmpFile('b.yaml', `listen: ["127.0.0.1:8080"]\nupstream: http://127.0.0.1:9000\nlog:\n  error: ${dir}/no/such/dir/error.log\n`);
  const b = run('--check-config', bad);
  assert.equal(b.status, 2);
  assert.match(b.stderr, new RegExp(`${bad}: log\\.error: cannot open '${dir}/no/such/dir/error\\.log'`));
});

test('startup logs listeners, upstream, admin, cache size, config file and version; shutdown names the signal', async (t) => {
  const origin = await startOrigin((req, res) => res.end('ok'));
  const f = tmpFile('s.yaml', 'cache:\n  memory_size: 64MiB\n  max_object_size: 1MiB\n');
  const admin = await freePort();
  const p = await startProxy(['--config', f, '--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${admin}`]);
  t.after(() => origin.close());
  const { code } = await p.stop();
  assert.equal(code, 0);
  // the last lines may still be in the pipe when the exit is seen
  for (let i = 0; i < 250 && !p.errors().includes('SIGTERM: draining'); i++) await new Promise((r) => setTimeout(r, 20));
  const log = p.errors();
  const version = run('--version').stdout.trim().split(' ')[1];
  assert.match(log, new RegExp(`\\[info\\] idemcache ${version.replace(/\./g, '\\.')} starting: config ${f}, reverse mode`));
  assert.match(log, new RegExp(`\\[info\\] listener 127\\.0\\.0\\.1:${p.port}\n`));
  assert.match(log, new RegExp(`\\[info\\] upstream http://127\\.0\\.0\\.1:${origin.port}\n`));
  assert.match(log, new RegExp(`\\[info\\] admin 127\\.0\\.0\\.1:${admin}\n`));
  assert.match(log, /\[info\] cache 64 MiB in memory, objects up to 1 MiB\n/);
  assert.match(log, /\[info\] SIGTERM: draining\n/);
});
