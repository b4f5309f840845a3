// While a command is processed but not durable yet (its fsyncs held back by the test's file layer):
// the gateway shows nothing of it (market data and order states come from the events of durable
// commands only, even when the outbox itself was synced ahead of the command log), and a shutdown
// that begins then answers it and still stops, though its client keeps its connection alive. And
// what a shutting-down server answers.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import { KeyStore, RateLimiter } from '../src/auth.js';
import { buildHttp } from '../src/http.js';
import { Metrics } from '../src/metrics.js';
import { ALICE, API_KEYS, BOB, book, Client, gatedIO, removeTmpDirs, SEGMENT, silentLogger, start, SYM, TEST_INSTRUMENT, tmpDir, until, within } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function startGated(): Promise<{ server: Awaited<ReturnType<typeof startServer>>; g: ReturnType<typeof gatedIO> }> {
  const g = gatedIO();
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
  const server = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: g.io } });
  closers.push(async () => {
    g.gate.holdAll = false;
    g.gate.holdCmd = false;
    g.release();
    await server.engine.close();
    await server.close();
  });
  return { server, g };
}

describe('market data comes from durable events only', () => {
  it('does not show an order whose command is not durable yet (outbox synced ahead of the command log)', async () => {
    const { server, g } = await startGated();
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    const actor = server.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    const outboxCaughtUp = (): boolean => actor.outbox.durableOffset >= actor.outbox.log.writtenOffset;

    g.gate.holdCmd = true; // the command log's fsyncs wait; the outbox's go through
    const first = alice.post({ side: 'buy', price: 1000, qty: 1 });
    await until(() => actor.processedSeq >= 1 && outboxCaughtUp(), 'alice\'s order processed, its events synced');
    const second = bob.post({ side: 'buy', price: 900, qty: 2 });
    await until(() => actor.processedSeq >= 2 && outboxCaughtUp(), 'bob\'s order processed, its events synced');
    // Let the command log's first fsync (alice's batch) complete; bob's command log record stays unsynced.
    g.release();
    expect((await first).status).toBe(200);
    expect(actor.durableSeq).toBe(1);
    // Bob's order is not durable (not acknowledged; a crash now would lose it), yet the gateway shows it.
    const seen = await book(server.url);
    g.gate.holdCmd = false;
    g.release();
    expect((await second).status).toBe(200);
    expect(seen).toMatchObject({ bids: [[1000, 1]] });
  }, 30_000);
});

describe('PATCH while a fill of the order is processed but not durable', () => {
  /**
   * Alice rests sell 10 @1000; Bob's market buy of 6 is processed but not durable (so the gateway
   * still sees 10 open); then Alice's PATCH `change` is processed too, and both become durable.
   * Returns Alice's answer.
   */
  async function amendDuringFill(change: { qty?: number; price?: number }): Promise<{ server: Awaited<ReturnType<typeof startServer>>; r: Awaited<ReturnType<Client['amend']>> }> {
    const { server, g } = await startGated();
    const alice = new Client(server.url, ALICE);
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const actor = server.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    g.gate.holdCmd = true;
    const before = actor.processedSeq;
    const fill = new Client(server.url, BOB).post({ side: 'buy', type: 'market', qty: 6 });
    await until(() => actor.processedSeq >= before + 1, "bob's order to be processed");
    const amend = alice.amend(a.order.orderId, change);
    await until(() => actor.processedSeq >= before + 2, 'the amendment to be processed');
    g.gate.holdCmd = false;
    g.release();
    expect((await fill).status).toBe(200);
    return { server, r: await amend };
  }

  it('a new price alone keeps the quantity the engine holds (the fill is not restored)', async () => {
    const { server, r } = await amendDuringFill({ price: 1005 });
    expect(r.status).toBe(200);
    // The order had 4 lots open when it was amended: a price change must not make it 10 again.
    expect(r.body.order).toMatchObject({ price: 1005, filledQty: 6, remainingQty: 4 });
    expect((await book(server.url)).asks).toEqual([[1005, 4]]);
  }, 30_000);

  it('a quantity alone is the new open quantity against what the engine holds: above it, a cancel-replace, not a refused reduction', async () => {
    // The gateway still sees 10 open: 5 looks like a reduction, but the engine holds 4.
    const { server, r } = await amendDuringFill({ qty: 5 });
    expect(r.status).toBe(200);
    expect(r.body.order).toMatchObject({ price: 1000, filledQty: 6, remainingQty: 5 });
    expect((await book(server.url)).asks).toEqual([[1000, 5]]);
  }, 30_000);
});

describe('graceful shutdown', () => {
  it('finishes when an HTTP request was in flight at SIGTERM (keep-alive client)', async () => {
    const { server, g } = await startGated();
    const alice = new Client(server.url, ALICE);
    await alice.place({ side: 'buy', price: 1000, qty: 1 }); // a keep-alive connection, idle
    const actor = server.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    g.gate.holdAll = true;
    const inFlight = alice.post({ side: 'buy', price: 1001, qty: 1 });
    await until(() => actor.processedSeq >= 2, 'the order to be processed');
    const closed = server.close();
    g.gate.holdAll = false;
    g.release();
    // The in-flight order is answered (it was taken before the shutdown)...
    expect((await inFlight).status).toBe(200);
    // ...and the server then stops.
    await within(closed, 15_000, 'server.close()');
  }, 30_000);
});

describe('while shutting down', () => {
  it("refuses a request with 503 SHUTTING_DOWN in the API's error format, Retry-After and connection: close; health still answers", async () => {
    const server = await start();
    closers.push(() => server.close());
    let ready = true;
    const app = buildHttp({
      gateway: server.gateway,
      keys: new KeyStore([]),
      limiter: new RateLimiter(1000, 1000),
      metrics: new Metrics(server.engine),
      logger: silentLogger,
      bodyLimit: 1 << 16,
      ready: () => ready,
    });
    closers.push(() => app.close());
    const before = await app.inject({ method: 'GET', url: `/v1/book/${SYM}` });
    expect(before.statusCode).toBe(200);
    expect(before.headers.connection).not.toBe('close');
    ready = false; // what close() does first
    const r = await app.inject({ method: 'GET', url: `/v1/book/${SYM}` });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toMatchObject({ error: { code: 'SHUTTING_DOWN' } });
    expect(r.headers['retry-after']).toBe('5');
    expect(r.headers.connection).toBe('close');
    const health = await app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({ ready: false });
  });
});
