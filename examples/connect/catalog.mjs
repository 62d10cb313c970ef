// The demo Connect service (catalog.proto) on connect-node, used by `make run`
// and by the integration tests. The descriptor set is read at run time, so
// there is no generated code: catalog.binpb is all a client or server needs.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { ConnectError, Code } from '@connectrpc/connect';
import { connectNodeAdapter, compressionGzip } from '@connectrpc/connect-node';

export const DESCRIPTORS = new URL('./catalog.binpb', import.meta.url).pathname;
export const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(DESCRIPTORS)));
export const CatalogService = registry.getService('idem.example.v1.CatalogService');

// calls: method name -> how many reached the server
export function catalogRoutes(calls = {}) {
  const count = (m) => (calls[m] = (calls[m] || 0) + 1);
  const items = new Map();
  return (router) => router.service(CatalogService, {
    // NO_SIDE_EFFECTS, and the handler says how long the answer stays good
    async getItem(req, ctx) {
      const n = count('getItem');
      ctx.responseHeader.set('Cache-Control', 'max-age=60');
      const it = items.get(req.id);
      return { id: req.id, name: it?.name ?? `item ${req.id.slice(0, 32)}`, priceCents: BigInt(it?.priceCents ?? 100), version: it?.version ?? 0, servedBy: `call ${n}` };
    },
    // NO_SIDE_EFFECTS too, but it fails: cached only when it says so
    async findItem(req, ctx) {
      count('findItem');
      if (req.id === 'gone') ctx.responseHeader.set('Cache-Control', 'max-age=60');
      throw new ConnectError(`no item ${req.id}`, Code.NotFound);
    },
    async putItem(req) {
      count('putItem');
      const prev = items.get(req.item.id);
      const version = (prev?.version ?? 0) + 1;
      items.set(req.item.id, { ...req.item, version });
      return { version };
    },
    async countItems(req, ctx) { // IDEMPOTENT: not side-effect free
      count('countItems');
      ctx.responseHeader.set('Cache-Control', 'max-age=60');
      return { id: req.id, version: items.size };
    },
    async *watchItem(req) { // server streaming: passes through
      count('watchItem');
      for (let v = 1; v <= 3; v++) yield { id: req.id, version: v };
    },
  });
}

export function createCatalogServer(calls) {
  return http.createServer(connectNodeAdapter({ routes: catalogRoutes(calls), acceptCompression: [compressionGzip] }));
}
