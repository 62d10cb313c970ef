// A small demo origin for `make run`: a few JSON and text endpoints.
import http from 'node:http';

export function createOrigin() {
  let counter = 0;
  return http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://origin');
      counter++;
      if (url.pathname === '/time') {
        res.setHeader('Content-Type', 'application/json');
        res.setHeader('Cache-Control', 'max-age=5');
        return res.end(JSON.stringify({ now: new Date().toISOString(), served: counter }));
      }
      if (url.pathname === '/echo') {
        res.setHeader('Content-Type', req.headers['content-type'] || 'application/octet-stream');
        return res.end(Buffer.concat(chunks));
      }
      if (url.pathname === '/headers') {
        res.setHeader('Content-Type', 'application/json');
        return res.end(JSON.stringify(req.headers, null, 2) + '\n');
      }
      res.setHeader('Content-Type', 'text/plain');
      res.end(`hello from the demo origin (request #${counter}, ${req.method} ${req.url})\n`);
    });
  });
}
