// bench client: N sequential POSTs of a 2 KiB JSON body, through a proxy or
// not; every response must be the origin's document, byte for byte. An
// https URL without a proxy is fetched over TLS, trusting the CA file in
// PEER_CA (one keep-alive connection: one handshake for the N requests).
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { doc, BODY } from './doc.mjs';
const [url, n, proxy] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const target = new URL(url);
const tls = !proxy && target.protocol === 'https:';
const agent = tls
  ? new https.Agent({ keepAlive: true, maxSockets: 1, ca: process.env.PEER_CA ? fs.readFileSync(process.env.PEER_CA) : undefined })
  : new http.Agent({ keepAlive: true, maxSockets: 1 });
function post() {
  return new Promise((resolve, reject) => {
    const opts = proxy
      ? { host: '127.0.0.1', port: Number(proxy), path: url, method: 'POST', agent }
      : { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent };
    const req = (tls ? https : http).request({ ...opts, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(BODY) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, version: Number(res.headers['x-doc-version']), body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(BODY);
  });
}
let bad = 0;
const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const r = await post();
  if (r.status !== 200 || r.body !== doc(r.version)) bad++;
}
const ms = Number(process.hrtime.bigint() - t0) / 1e6 / n;
console.log(JSON.stringify({ requests: n, bad, ms_per_request: Math.round(ms * 10) / 10 }));
agent.destroy();
