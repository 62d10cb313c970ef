// The malformed-request table end to end: each row alone, and each bad row
// followed by a good request in the same write. A bad row gets exactly one
// response (its status), a closed connection, and reaches no origin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startProxy, startOrigin, rawExchange, parseResponses, ROOT } from './lib.mjs';

function unescape(s) {
  const out = [];
  for (let i = 0; i < s.length; i++) {
    if (s.startsWith('{repeat:', i)) {
      const end = s.indexOf('}', i);
      const body = s.slice(i + 8, end);
      const colon = body.lastIndexOf(':');
      const unit = unescape(body.slice(0, colon));
      for (let k = 0; k < Number(body.slice(colon + 1)); k++) out.push(unit);
      i = end;
      continue;
    }
    if (s[i] === '\\' && i + 1 < s.length) {
      const c = s[++i];
      if (c === 'r') out.push(Buffer.from('\r'));
      else if (c === 'n') out.push(Buffer.from('\n'));
      else if (c === 't') out.push(Buffer.from('\t'));
      else if (c === 'x') { out.push(Buffer.from([parseInt(s.slice(i + 1, i + 3), 16)])); i += 2; }
      else out.push(Buffer.from(c));
      continue;
    }
    out.push(Buffer.from(s[i], 'latin1'));
  }
  return Buffer.concat(out);
}

const rows = fs.readFileSync(`${ROOT}/tests/malformed.tsv`, 'utf8').split('\n')
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => {
    const [status, name, ...rest] = l.split('\t');
    return { status: Number(status), name, bytes: unescape(rest.join('\t')) };
  });

let origin, proxy;
before(async () => {
  origin = await startOrigin((req, res) => { res.setHeader('Content-Length', 2); res.end('ok'); });
  proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`]);
});
after(async () => {
  const r = await proxy.stop();
  assert.equal(r.code, 0);
  await origin.close();
});

const GOOD = Buffer.from('GET /good HTTP/1.1\r\nHost: a\r\n\r\n');

// Every refusal says why, in words the README's Errors table lists.
const readme = fs.readFileSync(`${ROOT}/README.md`, 'utf8');
const errorsTable = readme.slice(readme.indexOf('## Errors idemcache answers itself'), readme.indexOf('## Limits and exit codes'));

test(`malformed table has at least 50 bad rows (${rows.length} rows)`, () => {
  assert.ok(rows.filter((r) => r.status !== 200).length >= 50);
});

for (const row of rows) {
  test(`${row.name} -> ${row.status}`, async () => {
    const before = origin.seen.length;
    const { data, closed } = await rawExchange(proxy.port, row.bytes, { idleMs: row.status === 200 ? 400 : 3000 });
    const res = parseResponses(data);
    assert.ok(res.length >= 1, `no response to ${row.name}`);
    assert.equal(res[0].status, row.status, `${row.name}: ${data.toString('latin1').slice(0, 200)}`);
    if (row.status === 200) {
      assert.equal(origin.seen.length, before + 1);
      assert.equal(res[0].body.toString(), 'ok');
      // the origin got the request intact: method, target, body, odd bytes
      const got = origin.seen.at(-1);
      const line = row.bytes.toString('latin1').replace(/^\r\n/, '').split('\r\n')[0];
      assert.equal(got.method, line.split(' ')[0], row.name);
      assert.equal(got.url, '/ok', row.name);
      const sent = row.bytes.toString('latin1');
      assert.equal(got.body.toString(), sent.includes('hello') ? 'hello' : '', row.name);
      const sentX = [...sent.matchAll(/\r\nX: ([^\r]*)/g)].map((m) => m[1]);
      const gotX = [];
      for (let i = 0; i < got.rawHeaders.length; i += 2) if (got.rawHeaders[i] === 'X') gotX.push(got.rawHeaders[i + 1]);
      assert.deepEqual(gotX, sentX, `${row.name}: X field lines`);
      return;
    }
    assert.equal(res.length, 1);
    const m = /^(\d{3}) [A-Za-z ]+: (.+)\n$/.exec(res[0].body.toString());
    assert.ok(m, `${row.name}: the body says why: ${JSON.stringify(res[0].body.toString())}`);
    assert.ok(errorsTable.includes(`"${m[2]}"`), `${row.name}: "${m[2]}" is in the README's Errors table`);
    assert.ok(closed, 'connection must close after an error');
    assert.equal(origin.seen.length, before, 'a bad request must not reach the origin');

    // Bad then good in one write: still one response, nothing forwarded.
    const both = await rawExchange(proxy.port, Buffer.concat([row.bytes, GOOD]), { idleMs: 3000 });
    const res2 = parseResponses(both.data);
    assert.equal(res2.length, 1, `${row.name}+good answered ${res2.length} times`);
    assert.equal(res2[0].status, row.status);
    assert.ok(both.closed);
    assert.equal(origin.seen.length, before, 'nothing after a bad request may be forwarded');
  });
}
