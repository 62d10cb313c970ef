// `make run`: the demo Connect service (examples/connect) on 127.0.0.1:9000
// and idemcache on 127.0.0.1:8080 in front of it. Ctrl-C stops both.
import { spawn } from 'node:child_process';
import { createCatalogServer } from './connect/catalog.mjs';

const root = new URL('../', import.meta.url).pathname;
const calls = {};
const origin = createCatalogServer(calls);
origin.on('error', (e) => { console.error(`demo origin: ${e.message}`); process.exit(1); });
origin.listen(9000, '127.0.0.1', () => {
  const proxy = spawn(`${root}build/idemcache`,
    ['--config', `${root}examples/idemcache.yaml`, '--listen', '127.0.0.1:8080', '--upstream', 'http://127.0.0.1:9000'],
    { stdio: 'inherit' });
  const svc = 'http://127.0.0.1:8080/idem.example.v1.CatalogService';
  console.log(`
Connect demo service on http://127.0.0.1:9000, idemcache on http://127.0.0.1:8080

try (watch Cache-Status, and "servedBy": it only changes when the call reached the service):
  curl -si '${svc}/GetItem?encoding=json&message=%7B%22id%22%3A%22a%22%7D&connect=v1'
  curl -si -H 'Content-Type: application/json' --data '{"id":"a"}' ${svc}/GetItem     # same entry as the GET
  curl -si -H 'Content-Type: application/json' --data '{"item":{"id":"a"}}' ${svc}/PutItem   # never cached
  curl -si -H 'Content-Type: application/json' --data '{"id":"gone"}' ${svc}/FindItem  # an error, cached by its own max-age

Ctrl-C stops both.
`);
  const stop = () => proxy.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  proxy.on('exit', (code) => { origin.close(); process.exit(code ?? 0); });
});
