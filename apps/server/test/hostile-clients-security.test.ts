// What a hostile client can do over the network, from a security review: per-depth book views left
// behind, frames the key's limit did not count, key guessing over one connection, bad input that
// was INTERNAL and logged, a liveness oracle on other users' orders, a PATCH that took two commands
// for one token (each failed on the code before its fix).
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { BookViews } from '../src/book-views.js';
import { resolveConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/server.js';
import { ALICE, API_KEYS, BOB, Client, removeTmpDirs, SEGMENT, silentLogger, SYM, TEST_INSTRUMENT, tmpDir, until, UpgradeRefused, WsClient, type WsMsg, wsUrl } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of closers.splice(0).reverse()) await c();
});

interface Started {
  server: RunningServer;
  /** The log lines at level error and above (pino levels: error 50, fatal 60). */
  errors: string[];
}

async function boot(settings: Record<string, unknown> = {}, wsMaxBufferedBytes?: number): Promise<Started> {
  const errors: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        const level = (JSON.parse(line) as { level: number }).level;
        if (level >= 50) errors.push(line);
      }
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const { silent, ...rest } = settings;
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT], ...rest });
  const server = await startServer(config, {
    logger: silent === true ? silentLogger : logger,
    engine: { segmentSize: SEGMENT },
    ...(wsMaxBufferedBytes === undefined ? {} : { wsMaxBufferedBytes }),
  });
  closers.push(() => server.close());
  return { server, errors };
}

async function ws(url: string, key?: string, reads = true): Promise<WsClient> {
  const c = await WsClient.connect(wsUrl(url), key === undefined ? {} : { 'x-api-key': key });
  c.ws.on('error', () => undefined);
  // A client that stops reading would never see the closing handshake: it is cut instead.
  closers.push(
    reads
      ? () => c.close()
      : () => {
          c.ws.terminate();
          return Promise.resolve();
        },
  );
  return c;
}

describe('authentication', () => {
  it('a WebSocket connection cannot guess API keys without limit: failed auth frames are limited or the connection is closed', async () => {
    const { server } = await boot();
    const c = await ws(server.url);
    const N = 300;
    for (let i = 0; i < N; i++) c.send({ op: 'auth', id: i, key: `guess-${String(i).padStart(8, '0')}` });
    // Every frame is answered (or the connection ends): count the UNAUTHORIZED answers.
    await until(() => c.received.length >= N || c.closeInfo !== undefined, 'the answers to the auth frames');
    const unauthorized = c.received.filter((m) => m.error?.code === 'UNAUTHORIZED').length;
    // Secure: after a few failures, the guesses are refused without being tried (RATE_LIMITED) or the connection is closed.
    expect(unauthorized).toBeLessThan(N);
  });
});

describe('rate limits', () => {
  it('a client over its rate limit still gets book snapshots of 10,000 levels per side without limit (subscriptions are not rate-limited)', async () => {
    const { server } = await boot({ rateLimit: 1, rateBurst: 2 });
    const alice = await ws(server.url, ALICE);
    // Spends the key's tokens: the third order is refused.
    for (let i = 0; i < 3; i++) await alice.call({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'limit', price: 100 + i, qty: 1 } });
    expect(alice.all((m) => m.error?.code === 'RATE_LIMITED')).toHaveLength(1);
    // Each subscription computes and sends a snapshot at the deepest depth allowed.
    const answers: WsMsg[] = [];
    for (let i = 0; i < 50; i++) answers.push(await alice.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 10_000 }));
    const limited = answers.filter((m) => m.error?.code === 'RATE_LIMITED').length;
    expect(limited).toBeGreaterThan(0);
  });

  it('a PATCH of the quantity alone, which may take two engine commands, takes two tokens', async () => {
    const { server } = await boot({ rateLimit: 1, rateBurst: 3 });
    const alice = new Client(server.url, ALICE);
    const placed = await alice.place({ side: 'buy', price: 100, qty: 5 }); // token 1, command 1
    const r = await alice.amend(placed.order.orderId, { qty: 10 }); // tokens 2 and 3, commands 2 and 3
    expect(r.status).toBe(200);
    const actor = server.engine.actor(SYM);
    // No more commands reach the engine's log than the tokens taken (3).
    expect(actor?.processedSeq).toBeLessThanOrEqual(3);
    const before = actor?.processedSeq;
    const again = await alice.amend(placed.order.orderId, { qty: 12 }); // no tokens left
    expect(again.status).toBe(429);
    expect(actor?.processedSeq).toBe(before);
  });
});

describe('information about other users', () => {
  it("cancelling another user's order answers the same whether it still rests or has ended (no liveness oracle)", async () => {
    const { server } = await boot();
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    const { order } = await alice.place({ side: 'buy', price: 100, qty: 5 });
    const whileResting = await bob.cancel(order.orderId);
    const amendWhileResting = await bob.amend(order.orderId, { qty: 1 });
    expect((await alice.cancel(order.orderId)).status).toBe(200);
    const afterEnded = await bob.cancel(order.orderId);
    const amendAfterEnded = await bob.amend(order.orderId, { qty: 1 });
    expect(whileResting.status).toBeGreaterThanOrEqual(400);
    // Secure: Bob cannot tell from the answers whether Alice's order is still in the book.
    expect([afterEnded.status, afterEnded.body.error?.code]).toEqual([whileResting.status, whileResting.body.error?.code]);
    expect([amendAfterEnded.status, amendAfterEnded.body.error?.code]).toEqual([amendWhileResting.status, amendWhileResting.body.error?.code]);
  });
});

describe('bad input', () => {
  it('an unauthenticated frame with a deeply nested depth is a VALIDATION error, not INTERNAL, and logs no error', async () => {
    const { server, errors } = await boot();
    const c = await ws(server.url);
    const nested = '['.repeat(200_000) + ']'.repeat(200_000);
    const N = 5;
    for (let i = 0; i < N; i++) c.send(`{"op":"subscribe","id":${i},"channel":"book","symbol":"${SYM}","depth":${nested}}`);
    await until(() => c.received.length >= N, 'the answers');
    const codes = c.received.map((m) => m.error?.code);
    expect(codes).toEqual(new Array<string>(N).fill('VALIDATION'));
    // Secure: bad input from anyone does not write error-level log lines (a flood of them, with stacks, fills the logs).
    expect(errors).toHaveLength(0);
  });
});

describe('memory', () => {
  it('book subscriptions at many depths, each dropped, leave no per-depth view of the book behind', async () => {
    const spy = vi.spyOn(BookViews.prototype, 'snapshot');
    const { server } = await boot();
    const alice = await ws(server.url, ALICE);
    // 100 bid levels.
    const orders = Array.from({ length: 100 }, (_, i) => ({ symbol: SYM, side: 'buy', type: 'limit', price: 100 + i, qty: 1 }));
    const placed = await alice.call({ op: 'order', order: orders });
    expect(placed.results?.every((r) => r.ok === true)).toBe(true);
    // One anonymous client, holding at most one book subscription at any time.
    const c = await ws(server.url);
    const DEPTHS = 300;
    for (let d = 1; d <= DEPTHS; d++) {
      await c.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: d });
      await c.call({ op: 'unsubscribe', channel: 'book', symbol: SYM });
    }
    const views = spy.mock.contexts[0] as BookViews;
    // Secure: what is kept is bounded by the subscriptions that exist (none now), not by every depth
    // ever asked for (before: one view per depth asked, 300 views holding 25,050 levels).
    expect(views.size).toBe(0);
  });

});

describe('guessing keys', () => {
  it('unknown keys from one address are refused 429 once past 20 (HTTP and WebSocket upgrades alike); a known key still works', async () => {
    const { server } = await boot();
    const answers: number[] = [];
    for (let i = 0; i < 20; i++) answers.push((await new Client(server.url, `guess-${i}-xxxxxxxx`).post({ side: 'buy', price: 100, qty: 1 })).status);
    expect(answers.every((s) => s === 401)).toBe(true);
    const limited = await new Client(server.url, 'guess-21-xxxxxxxx').post({ side: 'buy', price: 100, qty: 1 });
    expect(limited.status).toBe(429);
    expect(limited.body.error?.code).toBe('RATE_LIMITED');
    expect(limited.headers.get('retry-after')).not.toBeNull();
    const upgrade = await WsClient.connect(wsUrl(server.url), { 'x-api-key': 'guess-22-xxxxxxxx' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(upgrade).toBeInstanceOf(UpgradeRefused);
    expect((upgrade as UpgradeRefused).status).toBe(429);
    expect((await new Client(server.url, ALICE).post({ side: 'buy', price: 100, qty: 1 })).status).toBe(200);
  });
});
