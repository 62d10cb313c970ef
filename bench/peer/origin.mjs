// bench origin: POST /api/search answers doc(0) (MODE=same) or doc(n) for
// the n-th request (MODE=change), always max-age=0.
import http from 'node:http';
import { doc } from './doc.mjs';
let n = 0;
const [port, mode] = [Number(process.argv[2]), process.argv[3]];
http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const v = mode === 'change' ? ++n : 0;
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Cache-Control', 'max-age=0');
    res.setHeader('X-Doc-Version', String(v));
    res.end(doc(v));
  });
}).listen(port, '0.0.0.0');
