#!/usr/bin/env node
// Planted bugs, one at a time: does the suite notice? For each mutant in
// tests/mutants.json (a single-line change to one file), a scratch copy of
// the tree gets the change, is built, and runs the suites the mutant names.
// "caught" means a named suite failed; "survived" means every one passed,
// i.e. no test guards that behaviour. Not part of `make test` (it rebuilds
// once per mutant); run it with `make mutants` or
//   scripts/mutants.mjs [name-substring ...]
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(new URL('..', import.meta.url).pathname);
const list = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/mutants.json'), 'utf8'));
const only = process.argv.slice(2);
const chosen = only.length ? list.filter((m) => only.some((o) => m.name.includes(o))) : list;

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'idem-mutants-'));
const sh = (cmd, args, opts = {}) => spawnSync(cmd, args, { cwd: scratch, encoding: 'utf8', ...opts });

// The tree as it is now (committed or not), without build output.
for (const f of execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n').filter(Boolean)) {
  if (f.startsWith('node_modules/')) continue;
  const src = path.join(ROOT, f);
  if (!fs.existsSync(src) || fs.statSync(src).isDirectory()) continue;
  fs.mkdirSync(path.dirname(path.join(scratch, f)), { recursive: true });
  fs.copyFileSync(src, path.join(scratch, f));
}
fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(scratch, 'node_modules'));

const configure = sh('cmake', ['-Wno-dev', '--log-level=WARNING', '-S', '.', '-B', 'build', '-DCMAKE_BUILD_TYPE=Release']);
if (configure.status !== 0) { console.error(configure.stderr); process.exit(2); }
const build = () => sh('make', ['-s', '-C', 'build', `-j${os.cpus().length}`]).status === 0;
if (!build()) { console.error('the unmutated tree does not build'); process.exit(2); }

function runSuites(m) {
  for (const u of m.unit || []) {
    const r = sh('ctest', ['--no-tests=error', '-R', `^${u}$`], { cwd: path.join(scratch, 'build') });
    if (r.status !== 0) return `unit ${u}`;
  }
  for (const t of m.integration || []) {
    const args = ['--test', '--test-concurrency=1', '--test-timeout=180000', '--test-force-exit'];
    if (m.pattern) args.push(`--test-name-pattern=${m.pattern}`);
    const r = sh('node', [...args, `tests/integration/${t}`], {
      env: { ...process.env, IDEMCACHE_BIN: path.join(scratch, 'build/idemcache') },
      timeout: 15 * 60 * 1000,
    });
    if (r.status !== 0) return `integration ${t}`;
  }
  return null;
}

const results = [];
for (const m of chosen) {
  const file = path.join(scratch, m.file);
  const original = fs.readFileSync(file, 'utf8');
  const at = original.indexOf(m.from);
  let verdict;
  let by = '';
  if (at < 0 || original.indexOf(m.from, at + 1) >= 0) {
    verdict = 'stale'; // the text to mutate is gone or ambiguous: fix the list
  } else {
    fs.writeFileSync(file, original.slice(0, at) + m.to + original.slice(at + m.from.length));
    if (!build()) {
      verdict = 'no-build';
    } else {
      by = runSuites(m);
      verdict = by ? 'caught' : 'survived';
    }
    fs.writeFileSync(file, original);
  }
  results.push({ name: m.name, verdict, by });
  console.log(`${verdict.padEnd(8)} ${m.name}${by ? `  (${by})` : ''}`);
}
build();
fs.rmSync(scratch, { recursive: true, force: true });

const count = (v) => results.filter((r) => r.verdict === v).length;
console.log(`\n${count('caught')} caught, ${count('survived')} survived, ${count('stale') + count('no-build')} not applied`);
process.exit(count('survived') || count('stale') || count('no-build') ? 1 : 0);
