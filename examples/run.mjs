// `make run`: the demo origin on 127.0.0.1:9000 and idemcache on
// 127.0.0.1:8080 in front of it. Ctrl-C stops both.
import { spawn } from 'node:child_process';
import { createOrigin } from './origin.mjs';

const root = new URL('../', import.meta.url).pathname;
const origin = createOrigin();
origin.on('error', (e) => { console.error(`demo origin: ${e.message}`); process.exit(1); });
origin.listen(9000, '127.0.0.1', () => {
  const proxy = spawn(`${root}build/idemcache`,
    ['--config', `${root}examples/idemcache.yaml`, '--listen', '127.0.0.1:8080', '--upstream', 'http://127.0.0.1:9000'],
    { stdio: 'inherit' });
  console.log(`
demo origin on http://127.0.0.1:9000, idemcache on http://127.0.0.1:8080

try:
  curl -i http://127.0.0.1:8080/
  curl -i http://127.0.0.1:8080/time
  curl -s http://127.0.0.1:8080/headers          # what the origin received (Via, X-Forwarded-For)
  curl -s --data-binary 'hello' http://127.0.0.1:8080/echo

Ctrl-C stops both.
`);
  const stop = () => proxy.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  proxy.on('exit', (code) => { origin.close(); process.exit(code ?? 0); });
});
