// Edges of the server's JSON body parser, of what fastify refuses before routing, and of refused
// WebSocket upgrades (each failed on the code before its fix).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { ALICE, removeTmpDirs, request, start, SYM, within } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

describe('the JSON body parser', () => {
  it('a body that starts with a UTF-8 byte order mark is parsed as before (fastify\'s parser strips it)', async () => {
    const server = await start();
    closers.push(() => server.close());
    const json = JSON.stringify({ symbol: SYM, side: 'buy', type: 'limit', price: 200, qty: 1 });
    const raw = new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from(json, 'utf8')]);
    const r = await request(server.url, 'POST', '/v1/orders', { key: ALICE, raw, contentType: 'application/json' });
    expect(r.body.error?.code).toBeUndefined();
    expect(r.status).toBe(200);
    expect(r.body.order?.status).toBeDefined();
  }, 20_000);
});

describe('what fastify refuses before routing', () => {
  it('a path parameter past fastify\'s length limit is 414 URI_TOO_LONG in the API format, and counted', async () => {
    const server = await start();
    closers.push(() => server.close());
    const r = await request(server.url, 'GET', `/v1/orders/${SYM}/${'1'.repeat(200)}`, { key: ALICE });
    expect(r.status).toBe(414);
    expect(r.body).toEqual({ error: { code: 'URI_TOO_LONG', message: expect.any(String) as string } });
    const metrics = (await request(server.url, 'GET', '/metrics')).text;
    expect(metrics).toMatch(/^gx3_http_requests_total\{method="GET",route="unmatched",status="414"\} 1$/m);
  });
});

describe('refused WebSocket upgrades', () => {
  it('a refused upgrade (404) whose client never closes its side does not keep the server from shutting down', async () => {
    const server = await start();
    const u = new URL(server.url);
    // allowHalfOpen: the client reads the answer and the server's end, and keeps its own side open.
    const sock = net.connect({ port: Number(u.port), host: u.hostname, allowHalfOpen: true });
    const got: Buffer[] = [];
    const ended = new Promise<void>((resolve) => {
      sock.on('end', () => {
        resolve();
      });
    });
    sock.on('data', (b: Buffer) => got.push(b));
    sock.on('error', () => {
      // a reset once the server cuts the connection: what the test wants
    });
    await new Promise<void>((resolve) => sock.once('connect', () => { resolve(); }));
    sock.write('GET /nope HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    await ended;
    expect(Buffer.concat(got).toString('latin1')).toMatch(/^HTTP\/1\.1 404/);
    try {
      // The shutdown waits for every connection the HTTP server accepted: a refused upgrade's socket
      // must be closed by the server once its answer is written, not left half open for ever.
      await within(server.close(), 8_000, 'server.close() with a refused upgrade left half open by its client');
    } finally {
      sock.destroy();
      await server.close();
    }
  }, 30_000);
});
