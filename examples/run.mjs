// `make run`: the demo Connect service (examples/connect) on ORIGIN_PORT
// (9000) and idemcache on PORT (8080) in front of it, with
// examples/demo.yaml. The banner is printed once both listen; Ctrl-C stops
// both.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { createCatalogServer } from './connect/catalog.mjs';

const root = new URL('../', import.meta.url).pathname;
const port = Number(process.env.PORT || 8080);
const originPort = Number(process.env.ORIGIN_PORT || 9000);
for (const [name, v] of [['PORT', port], ['ORIGIN_PORT', originPort]]) {
  if (!Number.isInteger(v) || v < 1 || v > 65535) {
    console.error(`make run: ${name} must be a port number (1-65535)`);
    process.exit(2);
  }
}

function listening(p) {
  return new Promise((resolve) => {
    const s = net.connect(p, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

const calls = {};
const origin = createCatalogServer(calls);
origin.on('error', (e) => { console.error(`demo origin on 127.0.0.1:${originPort}: ${e.message}`); process.exit(1); });
origin.listen(originPort, '127.0.0.1', async () => {
  const proxy = spawn(`${root}build/idemcache`,
    ['--config', `${root}examples/demo.yaml`, '--listen', `127.0.0.1:${port}`,
      '--upstream', `http://127.0.0.1:${originPort}`],
    { stdio: 'inherit' });
  const stop = () => proxy.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  proxy.on('exit', (code) => { origin.close(); process.exit(code ?? 0); });
  while (proxy.exitCode === null && !(await listening(port))) await new Promise((r) => setTimeout(r, 50));
  if (proxy.exitCode !== null) return;
  const svc = `http://127.0.0.1:${port}/idem.example.v1.CatalogService`;
  console.log(`
Connect demo service on http://127.0.0.1:${originPort}, idemcache on http://127.0.0.1:${port}

try (watch Cache-Status, and "servedBy": it only changes when the call reached the service):
  curl -si '${svc}/GetItem?encoding=json&message=%7B%22id%22%3A%22a%22%7D&connect=v1'
  curl -si -H 'Content-Type: application/json' --data '{"id":"a"}' ${svc}/GetItem     # same entry as the GET
  curl -si -H 'Content-Type: application/json' --data '{"item":{"id":"a"}}' ${svc}/PutItem   # never cached
  curl -si -H 'Content-Type: application/json' --data '{"id":"gone"}' ${svc}/FindItem  # an error, cached by its own max-age

Ctrl-C stops both.
`);
});
