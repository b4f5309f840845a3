// The WebSocket connection limits (per API key, anonymous per address), the per-connection frame
// limiter and the failed-auth close: counts that must not leak or go wrong, no way around the limits
// (frames after the failed-auth close and frames no limit counted failed before their fixes).
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KeyStore, RateLimiter } from '../src/auth.js';
import { resolveConfig } from '../src/config.js';
import { Metrics } from '../src/metrics.js';
import { startServer, type RunningServer } from '../src/server.js';
import { WsApi } from '../src/ws.js';
import { ALICE, API_KEYS, BOB, CAROL, Client, removeTmpDirs, request, SEGMENT, silentLogger, start, SYM, TEST_INSTRUMENT, tmpDir, until, UpgradeRefused, WsClient, wsUrl } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function limited(perKey: number, perAddress: number, settings: Record<string, unknown> = {}): Promise<RunningServer> {
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT], ...settings });
  const server = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT }, wsMaxConnections: { perKey, perAddress } });
  closers.push(() => server.close());
  return server;
}

const open: WsClient[] = [];
afterEach(() => {
  for (const c of open.splice(0)) {
    c.ws.on('error', () => undefined);
    c.ws.terminate();
  }
});

type How = { header?: string; query?: string };
async function connect(url: string, how: How = {}): Promise<WsClient> {
  const c = await WsClient.connect(wsUrl(url, how.query === undefined ? '' : `?apiKey=${encodeURIComponent(how.query)}`), how.header === undefined ? {} : { 'x-api-key': how.header });
  open.push(c);
  return c;
}
async function outcome(url: string, how: How = {}): Promise<number | 'accepted'> {
  try {
    await connect(url, how);
    return 'accepted';
  } catch (err) {
    if (err instanceof UpgradeRefused) return err.status;
    throw err;
  }
}
async function wsConnections(url: string): Promise<number> {
  const m = /^gx3_ws_connections (\d+)$/m.exec((await request(url, 'GET', '/metrics')).text);
  return Number(m?.[1]);
}

describe('connection counts', () => {
  it('re-auth with the key the connection already holds is not refused as over the limit', async () => {
    const s = await limited(1, 1);
    const c = await connect(s.url, { header: ALICE });
    expect(await c.call({ op: 'auth', key: ALICE })).toMatchObject({ ok: true, user: 'alice' });
    expect(await c.call({ op: 'auth', key: ALICE })).toMatchObject({ ok: true, user: 'alice' });
    expect(await outcome(s.url, { header: ALICE })).toBe(429);
    await c.close();
    await until(async () => (await wsConnections(s.url)) === 0, 'closed');
    expect(await outcome(s.url, { header: ALICE })).toBe('accepted');
  });

  it('auth with another key moves the connection: the first key is freed, the second is full', async () => {
    const s = await limited(1, 1);
    const c = await connect(s.url, { header: ALICE });
    expect(await c.call({ op: 'auth', key: BOB })).toMatchObject({ ok: true, user: 'bob' });
    expect(await outcome(s.url, { header: BOB })).toBe(429);
    expect(await outcome(s.url, { query: ALICE })).toBe('accepted');
    // Back to alice is refused now (alice is full), and the connection stays bob's.
    expect(await c.call({ op: 'auth', key: ALICE })).toMatchObject({ ok: false, error: { code: 'TOO_MANY_CONNECTIONS' } });
    expect(await outcome(s.url, { header: BOB })).toBe(429);
    await c.close();
    await until(async () => (await wsConnections(s.url)) === 1, 'closed');
    expect(await outcome(s.url, { header: BOB })).toBe('accepted');
    expect(await outcome(s.url)).toBe('accepted'); // the address's anonymous slot was never taken for good
  });

  it('header, ?apiKey= and auth frames all count against the same key', async () => {
    const s = await limited(2, 5);
    await connect(s.url, { header: ALICE });
    await connect(s.url, { query: ALICE });
    expect(await outcome(s.url, { header: ALICE })).toBe(429);
    expect(await outcome(s.url, { query: ALICE })).toBe(429);
    // The header wins over ?apiKey=: counted against carol, not the full alice.
    expect(await outcome(s.url, { header: CAROL, query: ALICE })).toBe('accepted');
    const anon = await connect(s.url);
    expect(await anon.call({ op: 'auth', key: ALICE })).toMatchObject({ ok: false, error: { code: 'TOO_MANY_CONNECTIONS' } });
    expect(await anon.call({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1 } })).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
  });

  it('many open/close cycles of every kind leave the counts exact (no leak, never below zero)', async () => {
    const s = await limited(2, 2);
    for (let i = 0; i < 6; i++) {
      const a = await connect(s.url, { header: ALICE });
      const b = await connect(s.url, { query: ALICE });
      const anon = await connect(s.url);
      expect(await anon.call({ op: 'auth', key: BOB })).toMatchObject({ ok: true });
      expect(await anon.call({ op: 'auth', key: BOB })).toMatchObject({ ok: true });
      expect(await b.call({ op: 'auth', key: CAROL })).toMatchObject({ ok: true });
      expect(await b.call({ op: 'auth', key: 'nope' })).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
      for (const c of [a, b, anon]) await c.close();
      await until(async () => (await wsConnections(s.url)) === 0, 'all closed');
    }
    // Exactly the limit again for every key and the address.
    for (const how of [{ header: ALICE }, { header: BOB }, { header: CAROL }, {}]) {
      expect(await outcome(s.url, how)).toBe('accepted');
      expect(await outcome(s.url, how)).toBe('accepted');
      expect(await outcome(s.url, how)).toBe(429);
    }
  });

  it('a connection dropped for not reading frees its slot', async () => {
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
    const s = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT }, wsMaxBufferedBytes: 1 << 20, wsMaxConnections: { perKey: 1, perAddress: 1 } });
    closers.push(() => s.close());
    const greedy = await connect(s.url, { header: ALICE });
    greedy.ws.on('error', () => undefined);
    const socket = (greedy.ws as unknown as { _socket: { pause(): void } })._socket;
    socket.pause();
    const pad = 'x'.repeat(8192);
    for (let i = 0; i < 3000; i++) greedy.send({ op: 'ping', id: `${i}-${pad}` });
    await until(async () => (await wsConnections(s.url)) === 0, 'the server dropped the client that does not read');
    expect(await outcome(s.url, { header: ALICE })).toBe('accepted');
  }, 60_000);

  it('a connection closed after failed auths frees its slot', async () => {
    const s = await limited(1, 1);
    const c = await connect(s.url);
    for (let i = 0; i < 5; i++) c.send({ op: 'auth', key: `wrong-${i}` });
    await until(() => c.closeInfo !== undefined, 'the 1008 close');
    expect(c.closeInfo?.code).toBe(1008);
    await until(async () => (await wsConnections(s.url)) === 0, 'counted out');
    expect(await outcome(s.url)).toBe('accepted');
  });

  it('an upgrade whose socket has no remote address does not crash, and counts nothing', async () => {
    const s = await start();
    closers.push(() => s.close());
    const ws = new WsApi({ gateway: s.gateway, keys: new KeyStore(API_KEYS), limiter: new RateLimiter(100, 100), metrics: new Metrics(s.engine), logger: silentLogger, maxPayload: 1 << 16, maxConnectionsPerAddress: 1 });
    for (let i = 0; i < 3; i++) {
      const socket = new PassThrough();
      const written: Buffer[] = [];
      socket.on('data', (b: Buffer) => written.push(b));
      // Not a valid handshake (no Sec-WebSocket-Key): ws refuses it; nothing may be counted.
      expect(() => {
        ws.handleUpgrade({ url: '/v1/ws', method: 'GET', headers: {}, socket: {} } as unknown as IncomingMessage, socket, Buffer.alloc(0));
      }).not.toThrow();
      expect(Buffer.concat(written).toString('latin1')).not.toMatch(/^HTTP\/1\.1 429 /);
    }
    ws.close();
  });
});

describe('the failed-auth close', () => {
  it('frames that follow the fifth failed auth are not carried out (no sixth guess, no order)', async () => {
    const s = await start();
    closers.push(() => s.close());
    const c = await connect(s.url);
    c.ws.on('error', () => undefined);
    // Pipelined: the server reads them all before the client answers its close frame.
    for (let i = 0; i < 5; i++) c.send({ op: 'auth', key: `wrong-${i}` });
    c.send({ op: 'auth', key: ALICE });
    c.send({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'limit', price: 4242, qty: 7 } });
    await until(() => c.closeInfo !== undefined, 'the 1008 close');
    expect(c.closeInfo?.code).toBe(1008);
    // An order of bob's after it: the engine takes a symbol's commands in order, so alice's (if
    // carried out) is in the book once bob's is answered.
    await new Client(s.url, BOB).place({ side: 'sell', price: 9000, qty: 1 });
    const book = await request(s.url, 'GET', `/v1/book/${SYM}`);
    expect(book.body.bids).toEqual([]);
  });
});

describe('the per-connection frame limit', () => {
  it.each([
    ['malformed JSON', 'not json'],
    ['an unknown op', JSON.stringify({ op: 'nope' })],
    ['an order on an anonymous connection', JSON.stringify({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1 } })],
    ['an order frame with a field it does not have', JSON.stringify({ op: 'order', bogus: 1 })],
  ])('%s: frames no limit counts are still limited per connection', async (_what, frame) => {
    const s = await start({ rateLimit: 1, rateBurst: 2 });
    closers.push(() => s.close());
    const c = await connect(s.url);
    for (let i = 0; i < 20; i++) c.send(frame);
    c.send({ op: 'ping', id: 'last' });
    await c.next((m) => m.id === 'last', 'the answer to the last ping');
    // 21 frames at once on a connection allowed bursts of 2: some must be refused RATE_LIMITED.
    expect(c.all((m) => m.error?.code === 'RATE_LIMITED').length).toBeGreaterThan(0);
  });
});
