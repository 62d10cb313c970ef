// Command line and configuration file handling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, ROOT, tmpFile, startProxy, startOrigin, get, freePort, spawnTracked } from './lib.mjs';

const run = (...args) => spawnSync(BIN, args, { encoding: 'utf8' });

test('--version and --help', () => {
  assert.match(run('--version').stdout, /^idemcache \d+\.\d+\.\d+/);
  const h = run('--help');
  assert.equal(h.status, 0);
  for (const f of ['--listen', '--upstream', '--mode', '--config', '--workers', '--check-config']) assert.ok(h.stdout.includes(f));
  assert.equal(run('--bogus').status, 2);
});

test('--check-config accepts the example files', () => {
  for (const f of ['defaults.yaml', 'json-api.yaml', 'demo.yaml']) {
    const r = run('--check-config', `${ROOT}/examples/${f}`);
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    assert.match(r.stdout, /ok/, f);
  }
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

// A second instance that should refuse to start: its exit and stderr. One
// that starts instead (the bug) is killed after a while so the test fails
// on the exit code rather than hanging.
function runUntilExit(args) {
  return new Promise((resolve) => {
    const p = spawnTracked(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const err = [];
    p.stderr.on('data', (d) => err.push(d));
    const guard = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.on('exit', (code, sig) => {
      clearTimeout(guard);
      const stderr = Buffer.concat(err).toString();
      assert.doesNotMatch(stderr, /AddressSanitizer|LeakSanitizer|runtime error:/);
      resolve({ code, sig, stderr });
    });
  });
}

test('a second instance on a listen address another process holds exits 1', async () => {
  const first = await startOrigin((req, res) => res.end('first'));
  const second = await startOrigin((req, res) => res.end('second'));
  const p = await startProxy(['--upstream', `http://127.0.0.1:${first.port}`], { workers: 2 });
  try {
    // the same address, and the wildcard of the same port
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      const r = await runUntilExit(['--listen', `${host}:${p.port}`, '--workers', '2',
        '--upstream', `http://127.0.0.1:${second.port}`]);
      assert.equal(r.code, 1, `${host}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`listen ${host.replace(/\./g, '\\.')}:${p.port}: Address already in use`));
    }
    // the first still serves, and serves alone
    for (let i = 0; i < 10; i++) {
      const r = await get(p.port, `/${i}`, { headers: { Connection: 'close' } });
      assert.equal(r.body.toString(), 'first');
    }
    assert.equal(second.seen.length, 0);
  } finally {
    assert.equal((await p.stop()).code, 0);
    await first.close();
    await second.close();
  }
});

test('a second instance on an admin address another process holds exits 1', async () => {
  const origin = await startOrigin((req, res) => res.end('ok'));
  const admin = await freePort();
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--admin', `127.0.0.1:${admin}`]);
  try {
    const other = await freePort();
    const r = await runUntilExit(['--listen', `127.0.0.1:${other}`, '--admin', `127.0.0.1:${admin}`,
      '--upstream', `http://127.0.0.1:${origin.port}`, '--workers', '1']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`admin 127\\.0\\.0\\.1:${admin}: Address already in use`));
    assert.equal((await get(admin, '/healthz')).status, 200);
    assert.equal((await get(p.port, '/')).body.toString(), 'ok');
  } finally {
    assert.equal((await p.stop()).code, 0);
    await origin.close();
  }
});

test('--admin on a --listen address is refused naming the field', async () => {
  const port = await freePort();
  const up = ['--upstream', 'http://127.0.0.1:1', '--workers', '1'];
  const cases = [
    [['--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${port}`], `admin: 127.0.0.1:${port} overlaps listen 127.0.0.1:${port}`],
    [['--listen', `0.0.0.0:${port}`, '--admin', `127.0.0.1:${port}`], `admin: 127.0.0.1:${port} overlaps listen 0.0.0.0:${port}`],
    [['--listen', `127.0.0.1:${port}`, '--admin', `0.0.0.0:${port}`], `admin: 0.0.0.0:${port} overlaps listen 127.0.0.1:${port}`],
    [['--listen', `127.0.0.1:${port}`, '--listen', `127.0.0.1:${port}`], `listen: 127.0.0.1:${port} and 127.0.0.1:${port} overlap`],
    [['--listen', `127.0.0.1:${port}`, '--listen', `0.0.0.0:${port}`], `listen: 127.0.0.1:${port} and 0.0.0.0:${port} overlap`],
  ];
  for (const [args, want] of cases) {
    const r = await runUntilExit([...args, ...up]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stderr.includes(want), r.stderr);
  }
  // from the file: file, line and field
  const f = tmpFile('admin.yaml', `upstream: http://127.0.0.1:1\nlisten: 127.0.0.1:${port}\nadmin: 127.0.0.1:${port}\n`);
  const r = run('--check-config', f);
  assert.equal(r.status, 2);
  assert.ok(r.stderr.includes(`${f}:3: admin: 127.0.0.1:${port} overlaps listen 127.0.0.1:${port}`), r.stderr);
  assert.match(r.stderr, /PURGE/);
  // a file that leaves listen to the command line is checked on its own
  const alone = tmpFile('admin.yaml', 'upstream: http://127.0.0.1:1\nadmin: 127.0.0.1:8080\n');
  assert.equal(run('--check-config', alone).status, 0);
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
  assert.match(r.stderr, new RegExp(`warning: ${f}: cache\\.max_object_size: 8388608 bytes is more than one shard holds \\(cache\\.memory_size / 16 = 65536 bytes\\): clamped to 65536`));
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
