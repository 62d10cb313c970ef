// Bodies are streamed, never buffered whole: 1 GiB each way with the
// proxy's peak RSS under 64 MiB. (Under ASan, shadow memory makes RSS
// meaningless, so the sanitized run moves 64 MiB and checks integrity only.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import { startProxy, startOrigin, SANITIZED } from './lib.mjs';

const SIZE = SANITIZED ? 64 << 20 : 1 << 30;
const CHUNK = Buffer.alloc(1 << 20, 'x');

function peakRss(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]) * 1024;
}

function writeBody(stream, size, done) {
  let sent = 0;
  const pump = () => {
    while (sent < size) {
      const n = Math.min(CHUNK.length, size - sent);
      sent += n;
      if (!stream.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return stream.once('drain', pump);
    }
    done();
  };
  pump();
}

test(`${SIZE >> 20} MiB download and upload stream through with bounded memory`, { timeout: 300000 }, async () => {
  const origin = await startOrigin(() => {});
  // Replace the buffering handler: stream both ways.
  origin.server.removeAllListeners('request');
  origin.server.on('request', (req, res) => {
    if (req.method === 'GET') {
      res.setHeader('Content-Length', SIZE);
      writeBody(res, SIZE, () => res.end());
      return;
    }
    let n = 0;
    const h = crypto.createHash('sha256');
    req.on('data', (d) => { n += d.length; h.update(d); });
    req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
  });
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--access-log', 'off']);

  const got = await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: p.port, path: '/big' }, (res) => {
      let n = 0;
      let bad = false;
      res.on('data', (d) => { n += d.length; if (!bad && d.indexOf(0x79) >= 0) bad = true; });
      res.on('end', () => resolve({ n, bad }));
      res.on('error', reject);
    }).on('error', reject);
  });
  assert.equal(got.n, SIZE);
  assert.ok(!got.bad);

  const expect = crypto.createHash('sha256');
  const up = await new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: p.port, path: '/up', method: 'POST', headers: { 'Content-Length': SIZE } }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < SIZE) {
        sent += CHUNK.length;
        expect.update(CHUNK);
        if (!req.write(CHUNK)) return req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  assert.equal(up, `${SIZE} ${expect.digest('hex')}`);

  const rss = peakRss(p.proc.pid);
  if (!SANITIZED) assert.ok(rss < 64 << 20, `peak RSS ${rss >> 20} MiB`);
  console.log(`peak RSS after ${SIZE >> 20} MiB each way: ${(rss / 1048576).toFixed(1)} MiB`);
  assert.equal((await p.stop()).code, 0);
  await origin.close();
});
