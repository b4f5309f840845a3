// WebSocket clients that would cost the server without bound or crash it: one that sends requests
// and never reads the answers, and one that resets its connection while its upgrade is refused.
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KeyStore, RateLimiter } from '../src/auth.js';
import { resolveConfig } from '../src/config.js';
import { Metrics } from '../src/metrics.js';
import { startServer } from '../src/server.js';
import { WsApi } from '../src/ws.js';
import { ALICE, API_KEYS, BOB, removeTmpDirs, request, SEGMENT, silentLogger, start, TEST_INSTRUMENT, tmpDir, until, UpgradeRefused, WsClient, wsUrl } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function wsConnections(url: string): Promise<number> {
  const m = /^gx3_ws_connections (\d+)$/m.exec((await request(url, 'GET', '/metrics')).text);
  return Number(m?.[1]);
}

describe('a client that never reads its answers', () => {
  it('is dropped once its unsent answers pass the limit, and the server goes on serving', async () => {
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
    const server = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT }, wsMaxBufferedBytes: 1 << 20 });
    closers.push(() => server.close());
    const greedy = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
    const socket = (greedy.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    greedy.ws.on('error', () => undefined); // its sends fail once the server drops it
    socket.pause(); // reads nothing more
    expect(await wsConnections(server.url)).toBe(1);
    // Pings with big ids: each answer repeats its id (8 KiB), 24 MiB in all, more than the
    // connection's socket buffers hold.
    const pad = 'x'.repeat(8192);
    for (let i = 0; i < 3000; i++) greedy.send({ op: 'ping', id: `${i}-${pad}` });
    await until(async () => (await wsConnections(server.url)) === 0, 'the server dropped the client that does not read');

    const other = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
    expect(await other.call({ op: 'ping' })).toMatchObject({ pong: true });
    await other.close();
    socket.resume();
    await until(() => greedy.closeInfo !== undefined, 'the dropped client saw its connection end');
  }, 60_000);
});

describe('a refused upgrade whose connection fails', () => {
  it.each([
    ['a target that is not a path (400)', '//', {}],
    ['an unknown path (404)', '/nope', {}],
    ['an unknown key (401)', '/v1/ws', { 'x-api-key': 'no-such-key' }],
  ])('%s: the socket error is handled (it would be an uncaught error event)', async (_what, url, headers) => {
    const server = await start();
    closers.push(() => server.close());
    const ws = new WsApi({
      gateway: server.gateway,
      keys: new KeyStore(API_KEYS),
      limiter: new RateLimiter(100, 100),
      metrics: new Metrics(server.engine),
      logger: silentLogger,
      maxPayload: 1 << 16,
    });
    const socket = new PassThrough();
    const written: Buffer[] = [];
    socket.on('data', (b: Buffer) => written.push(b));
    ws.handleUpgrade({ url, headers } as unknown as IncomingMessage, socket, Buffer.alloc(0));
    expect(Buffer.concat(written).toString('latin1')).toMatch(/^HTTP\/1\.1 40[014] /);
    // The client reset the connection: an EventEmitter throws an `error` event that has no listener.
    expect(() => socket.emit('error', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))).not.toThrow();
    expect(socket.destroyed).toBe(true);
    ws.close();
  });
});

describe('many connections', () => {
  it('one key holds at most its limit of connections, anonymous ones at most theirs per address; a freed slot can be used again', async () => {
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
    const server = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT }, wsMaxConnections: { perKey: 2, perAddress: 2 } });
    closers.push(() => server.close());
    const open: WsClient[] = [];
    closers.push(async () => {
      for (const c of open) await c.close();
    });
    const connect = async (key?: string): Promise<WsClient> => {
      const c = await WsClient.connect(wsUrl(server.url), key === undefined ? {} : { 'x-api-key': key });
      open.push(c);
      return c;
    };
    const refusal = (key?: string): Promise<unknown> => WsClient.connect(wsUrl(server.url), key === undefined ? {} : { 'x-api-key': key }).then(
      () => 'accepted',
      (err: unknown) => err,
    );
    const first = await connect(ALICE);
    await connect(ALICE);
    const third = await refusal(ALICE);
    expect(third).toBeInstanceOf(UpgradeRefused);
    expect((third as UpgradeRefused).status).toBe(429);
    expect(JSON.parse((third as UpgradeRefused).body)).toMatchObject({ error: { code: 'TOO_MANY_CONNECTIONS' } });
    await first.close();
    await until(async () => (await wsConnections(server.url)) === 1, 'the closed connection counted out');
    await connect(ALICE); // the freed slot

    // Anonymous connections count per address; one that authenticates moves to its key's count.
    const anon1 = await connect();
    await connect();
    expect(await refusal()).toBeInstanceOf(UpgradeRefused);
    expect(await anon1.call({ op: 'auth', key: ALICE })).toMatchObject({ ok: false, error: { code: 'TOO_MANY_CONNECTIONS' } });
    expect(await anon1.call({ op: 'auth', key: BOB })).toMatchObject({ ok: true, user: 'bob' });
    await connect(); // anon1 no longer counts as anonymous
  });
});
