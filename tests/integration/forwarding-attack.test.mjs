// Attacks on the forwarding fields and the peer signature (review of the
// TLS work, findings 2-5): each test fails against the binary as it was
// reviewed and passes once the finding is fixed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, startOrigin, tmpFile, rawExchange, parseResponses } from './lib.mjs';

// Finding: only X-Forwarded-Proto is removed from a client's request, but
// origins read the scheme from its siblings too, before it: Rack (Rails,
// Sinatra) takes X-Forwarded-Ssl: on, then X-Forwarded-Scheme, then
// X-Forwarded-Proto; IIS/ARR Front-End-Https. A cleartext client sends
// `X-Forwarded-Ssl: on`, a Rack origin believes https and answers the page
// instead of its redirect to https, and that answer is stored under the
// http:// key and served to every cleartext client (the redirect, and
// what hangs on it such as Secure cookies and HSTS, gone for all).
test('cleartext: a client cannot claim https through X-Forwarded-Ssl / X-Forwarded-Scheme / Front-End-Https', async (t) => {
  // Rack::Request#scheme, in its order
  const rackScheme = (h) => {
    if (h['x-forwarded-ssl'] === 'on') return 'https';
    if (h['x-forwarded-scheme']) return h['x-forwarded-scheme'];
    if (h['front-end-https'] === 'on') return 'https';
    return h['x-forwarded-proto'] ?? 'http';
  };
  const origin = await startOrigin((req, res) => {
    res.setHeader('Cache-Control', 'max-age=60');
    if (rackScheme(req.headers) !== 'https') {
      res.statusCode = 301;
      res.setHeader('Location', `https://a${req.url}`);
      res.end();
      return;
    }
    res.end('account page');
  });
  const p = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
  t.after(async () => { await p.stop(); await origin.close(); });
  for (const [i, field] of ['X-Forwarded-Ssl: on', 'X-Forwarded-Scheme: https', 'Front-End-Https: on'].entries()) {
    const { data } = await rawExchange(p.port,
      `GET /account${i} HTTP/1.1\r\nHost: a\r\n${field}\r\nConnection: close\r\n\r\n`);
    assert.equal(parseResponses(data)[0].status, 301, `${field} from a cleartext client is not believed`);
    // and the next, honest, cleartext client gets the redirect, not the page
    const victim = parseResponses((await rawExchange(p.port,
      `GET /account${i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`)).data)[0];
    assert.equal(victim.status, 301, `after ${field}: the cleartext entry is the redirect`);
  }
});
