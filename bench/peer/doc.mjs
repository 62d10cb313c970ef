// The bench's origin document: 20 KiB of JSON. Version n changes two fields.
export function doc(n) {
  const items = Array.from({ length: 300 }, (_, i) => ({ id: i, name: `item number ${i}`, price: (i * 37) % 1000, tags: ['a', 'b', `t${i % 7}`] }));
  return JSON.stringify({ version: n, updated: `2026-11-26T10:00:${String(n % 60).padStart(2, '0')}Z`, items });
}
export const BODY = JSON.stringify({ query: 'orders', filters: Array.from({ length: 30 }, (_, i) => ({ field: `f${i}`, op: 'eq', value: `v${String(i * 7919).padStart(8, '0')}` })), pad: 'x'.repeat(200) }).slice(0, 2048);
