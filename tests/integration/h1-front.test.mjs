// The HTTP/1 front's own timers (h1_server.c), which the pipeline asks for
// through front_ops and no longer runs itself: the send timer of a relayed
// response (timeouts.client_send_idle).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startProxy, startRawOrigin, tmpFile } from './lib.mjs';

test('a client that stops reading a relayed response is closed after timeouts.client_send_idle, and so is its origin', async (t) => {
  let originClosed;
  const closed = new Promise((r) => { originClosed = r; });
  // An origin with far more to send than any buffer on the way holds.
  const origin = await startRawOrigin((s) => {
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 268435456\r\n\r\n');
      const block = Buffer.alloc(1 << 20, 'x');
      const more = () => { while (!s.destroyed && s.write(block)); };
      s.on('drain', more);
      more();
    });
    s.on('close', () => originClosed(true));
  });
  const cfg = tmpFile('c.yaml', 'timeouts:\n  client_send_idle: 300ms\n');
  const proxy = await startProxy(['--upstream', `http://127.0.0.1:${origin.port}`, '--config', cfg]);
  const client = net.connect(proxy.port, '127.0.0.1');
  t.after(async () => {
    client.destroy();
    await proxy.stop();
    await origin.close();
  });
  client.on('error', () => {});
  await new Promise((r) => client.once('connect', r));
  client.pause(); // reads nothing: the proxy's writes back up
  client.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
  let timer;
  const gone = await Promise.race([closed, new Promise((r) => { timer = setTimeout(() => r(false), 20000); })]);
  clearTimeout(timer);
  assert.ok(gone, 'the stalled client was not let go: its origin connection is still open');
});
