// Hand-built HTTP/2 frames (RFC 9113 §4, §6) and a raw connection that
// records what the server sends back: for the bad-input tests, which no
// well-behaved client library would send.
import net from 'node:net';

export const T = { DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 };
export const E = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, FLOW_CONTROL_ERROR: 3, STREAM_CLOSED: 5, REFUSED_STREAM: 7, CANCEL: 8, COMPRESSION_ERROR: 9, ENHANCE_YOUR_CALM: 0xb };
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export function frame(type, flags, stream, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

export function u32(...n) {
  const b = Buffer.alloc(4 * n.length);
  n.forEach((v, i) => b.writeUInt32BE(v, 4 * i));
  return b;
}

export function settings(pairs = []) {
  const b = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, v], i) => { b.writeUInt16BE(id, 6 * i); b.writeUInt32BE(v, 6 * i + 2); });
  return frame(T.SETTINGS, 0, 0, b);
}

// HPACK integer with an N-bit prefix (RFC 7541 §5.1)
function hpackInt(n, bits, first = 0) {
  const max = (1 << bits) - 1;
  if (n < max) return Buffer.from([first | n]);
  const out = [first | max];
  n -= max;
  while (n >= 128) { out.push((n % 128) + 128); n = Math.floor(n / 128); }
  out.push(n);
  return Buffer.from(out);
}

// Literal field without indexing, new name, no Huffman (RFC 7541 §6.2.2)
export function literal(name, value) {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v]);
}

// Literal field with incremental indexing, new name (RFC 7541 §6.2.1):
// it enters the dynamic table, at index 62 while it is the newest entry.
export function literalIndexed(name, value) {
  const n = Buffer.from(name);
  const v = Buffer.from(value);
  return Buffer.concat([Buffer.from([0x40]), hpackInt(n.length, 7), n, hpackInt(v.length, 7), v]);
}

// Indexed field (RFC 7541 §6.1): one byte for an index below 127.
export const indexed = (i) => Buffer.from([0x80 | i]);

export function block(fields) {
  return Buffer.concat(fields.map(([n, v]) => literal(n, v)));
}

export function request(stream, { method = 'GET', path = '/', authority = 'h2.test', extra = [], flags = F.END_STREAM | F.END_HEADERS } = {}) {
  return frame(T.HEADERS, flags, stream, block([[':method', method], [':scheme', 'http'], [':authority', authority], [':path', path], ...extra]));
}

// :status of a response HEADERS block, when it is the block's first field
// (nghttp2 puts it first): indexed from the static table, or a literal
// whose value may be Huffman-coded digits (RFC 7541 Appendix B).
const STATIC_STATUS = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };
const DIGITS = { '00000': '0', '00001': '1', '00010': '2', '011001': '3', '011010': '4', '011011': '5', '011100': '6', '011101': '7', '011110': '8', '011111': '9' };
export function status(payload) {
  const b = payload[0];
  if (b & 0x80) return STATIC_STATUS[b & 0x7f];
  if (!((b & 0xc0) === 0x40 && (b & 0x3f) === 8) && !((b & 0xf0) === 0x00 && (b & 0x0f) === 8) && !((b & 0xf0) === 0x10 && (b & 0x0f) === 8)) return undefined;
  const huff = payload[1] & 0x80;
  const len = payload[1] & 0x7f;
  const v = payload.subarray(2, 2 + len);
  if (!huff) return Number(v.toString());
  let bits = '';
  for (const x of v) bits += x.toString(2).padStart(8, '0');
  let out = '';
  let cur = '';
  for (const c of bits) {
    cur += c;
    if (DIGITS[cur]) { out += DIGITS[cur]; cur = ''; }
    if (out.length === 3) break;
  }
  return Number(out);
}

// A raw client connection: the preface and our SETTINGS go first. Frames
// the server sends are parsed into `frames` ({ type, flags, stream, payload }).
export function connect(port, { settingsPairs = [], preface = true, read = true } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    const frames = [];
    let buf = Buffer.alloc(0);
    let closed = false;
    const waiters = new Set();
    const check = () => { for (const w of waiters) w(); };
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        frames.push({ type: buf[3], flags: buf[4], stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) });
        buf = buf.subarray(9 + len);
      }
      check();
    });
    s.on('close', () => { closed = true; check(); });
    s.on('error', () => {});
    s.on('connect', () => {
      if (!read) s.pause();
      if (preface) s.write(Buffer.concat([PREFACE, settings(settingsPairs)]));
      resolve({
        socket: s,
        frames,
        get closed() { return closed; },
        send(b) { if (!s.destroyed) s.write(b); },
        // resolves with the first frame matching pred (or null once closed)
        waitFor(pred, ms = 10000) {
          return new Promise((res) => {
            const done = (v) => { waiters.delete(w); clearTimeout(t); res(v); };
            const w = () => { const f = frames.find(pred); if (f) done(f); else if (closed) done(null); };
            const t = setTimeout(() => done(undefined), ms);
            waiters.add(w);
            w();
          });
        },
        waitClosed(ms = 10000) {
          return new Promise((res) => {
            if (closed) return res(true);
            const t = setTimeout(() => res(false), ms);
            s.once('close', () => { clearTimeout(t); res(true); });
          });
        },
        close() { s.destroy(); },
      });
    });
    s.on('error', reject);
  });
}

export const goaway = (f) => f.type === T.GOAWAY;
export const rstOn = (stream) => (f) => f.type === T.RST_STREAM && f.stream === stream;
export const headersOn = (stream) => (f) => f.type === T.HEADERS && f.stream === stream;
export const errorCode = (f) => f.payload.readUInt32BE(f.type === T.GOAWAY ? 4 : 0);
