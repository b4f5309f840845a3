// What Node's HTTP server refuses before any route sees it (a request sent too slowly, a request
// that is not HTTP, headers too large) is answered in the API's error format, the connection is
// closed, and the server goes on serving.
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { ALICE, Client, removeTmpDirs, start, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** Writes `parts` to a new connection and resolves with everything read until the server closes it. */
function exchange(server: TestServer, ...parts: string[]): Promise<string> {
  const u = new URL(server.url);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(Number(u.port), u.hostname, () => {
      for (const p of parts) s.write(p);
    });
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('error', reject);
    s.on('close', () => {
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

function parse(answer: string): { status: number; headers: string; body: unknown } {
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), headers: head.toLowerCase(), body: JSON.parse(body) as unknown };
}

describe('requests Node refuses', () => {
  it('a body that never arrives whole: 408 REQUEST_TIMEOUT, the connection closed, other clients served', async () => {
    const server = await start({ requestTimeoutMs: 300 });
    closers.push(() => server.close());
    const slow = exchange(server, `POST /v1/orders HTTP/1.1\r\nHost: x\r\nx-api-key: ${ALICE}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"symbol":`);
    const a = parse(await slow);
    expect(a.status).toBe(408);
    expect(a.headers).toContain('connection: close');
    expect(a.body).toEqual({ error: { code: 'REQUEST_TIMEOUT', message: expect.stringContaining('requestTimeoutMs') as unknown } });
    const placed = await new Client(server.url, ALICE).post({ side: 'buy', price: 1000, qty: 1 });
    expect(placed.status).toBe(200);
  }, 30_000);

  it('headers that never end: 408 as well', async () => {
    const server = await start({ requestTimeoutMs: 300 });
    closers.push(() => server.close());
    const a = parse(await exchange(server, 'GET /health HTTP/1.1\r\nHost: x\r\nx-slow: '));
    expect(a.status).toBe(408);
    expect((a.body as { error: { code: string } }).error.code).toBe('REQUEST_TIMEOUT');
  }, 30_000);

  it('a request that is not HTTP: 400 BAD_REQUEST naming the parser error', async () => {
    const server = await start();
    closers.push(() => server.close());
    const a = parse(await exchange(server, 'HELLO THERE\r\n\r\n'));
    expect(a.status).toBe(400);
    expect(a.body).toEqual({ error: { code: 'BAD_REQUEST', message: expect.stringMatching(/^malformed HTTP request \(HPE_/) as unknown } });
  });

  it('headers past 16 KiB: 431 HEADERS_TOO_LARGE', async () => {
    const server = await start();
    closers.push(() => server.close());
    const a = parse(await exchange(server, `GET /health HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`));
    expect(a.status).toBe(431);
    expect((a.body as { error: { code: string } }).error.code).toBe('HEADERS_TOO_LARGE');
  });
});

describe('requestTimeoutMs', () => {
  it('is read from GX3_REQUEST_TIMEOUT_MS and --request-timeout-ms, and checked', () => {
    expect(loadConfig([], { GX3_REQUEST_TIMEOUT_MS: '5000' }).requestTimeoutMs).toBe(5000);
    expect(loadConfig(['--request-timeout-ms', '700'], { GX3_REQUEST_TIMEOUT_MS: '5000' }).requestTimeoutMs).toBe(700);
    expect(loadConfig([], {}).requestTimeoutMs).toBe(30_000);
    expect(() => loadConfig(['--request-timeout-ms', '50'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--request-timeout-ms', '50'], {})).toThrow(/requestTimeoutMs \(GX3_REQUEST_TIMEOUT_MS \/ --request-timeout-ms\): must be an integer in 100\.\.3600000, got "50"/);
  });
});
