// Races and ordering between concurrent requests on the same orders and ids. The file layer
// holds fsyncs back (gatedIO) so that commands stay processed-but-not-durable while the test sends
// more: every interleaving is forced, never timed. Each test asserts the correct behaviour: compared
// with GET once everything is durable, with the engine's own book, and with the metrics.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Side } from '@gx3/orderbook';
import { KeyStore } from '../src/auth.js';
import { resolveConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/server.js';
import { ALICE, API_KEYS, BOB, book, Client, gatedIO, removeTmpDirs, request, SEGMENT, silentLogger, SYM, TEST_INSTRUMENT, tmpDir, until, within, WsClient, wsUrl, type Res, type WsMsg, metricSample } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

type Gate = ReturnType<typeof gatedIO>;
type Actor = NonNullable<ReturnType<RunningServer['engine']['actor']>>;

async function startGated(engine: { mailboxSize?: number } = {}): Promise<{ server: RunningServer; g: Gate; actor: Actor }> {
  const g = gatedIO();
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir('gx3-review-races-'), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
  const server = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: g.io, ...engine } });
  closers.push(async () => {
    g.gate.holdAll = false;
    g.gate.holdCmd = false;
    g.release();
    await server.close();
  });
  const actor = server.engine.actor(SYM);
  if (actor === undefined) throw new Error('no actor');
  return { server, g, actor };
}

/**
 * Alice's resting order of 10 at 1000 (`side`), fsyncs held, and her PATCH {qty: 15} sent: its first
 * attempt (a reduction, refused) is processed, not durable.
 */
async function growHeld(side: 'buy' | 'sell' = 'sell'): Promise<{ server: RunningServer; g: Gate; actor: Actor; alice: Client; id: number; before: number; grow: Promise<Res> }> {
  const { server, g, actor } = await startGated();
  const alice = new Client(server.url, ALICE);
  const a = await alice.place({ side, price: 1000, qty: 10 });
  g.gate.holdAll = true;
  const before = actor.processedSeq;
  const grow = alice.amend(a.order.orderId, { qty: 15 });
  await until(() => actor.processedSeq >= before + 1, 'the reduction attempt to be processed');
  return { server, g, actor, alice, id: a.order.orderId, before, grow };
}

/** Lets every held and future fsync through. */
function openGate(g: Gate): void {
  g.gate.holdAll = false;
  g.gate.holdCmd = false;
  g.release();
}


async function commandCount(base: string, kind: string, outcome: string): Promise<number> {
  const text = (await request(base, 'GET', '/metrics')).text;
  return metricSample(text, 'gx3_commands_total', { kind, outcome }) ?? 0;
}

/** The engine's book as aggregated levels (best first), to compare with GET /v1/book. */
function engineLevels(actor: { book: { forEachOrder(side: Side, visit: (orderId: number, userId: number, price: number, qty: number) => void): void } }): { bids: [number, number][]; asks: [number, number][] } {
  const levels = (side: Side): [number, number][] => {
    const out: [number, number][] = [];
    actor.book.forEachOrder(side, (_id, _user, price, qty) => {
      const last = out[out.length - 1];
      if (last !== undefined && last[0] === price) last[1] += qty;
      else out.push([price, qty]);
    });
    return out;
  };
  return { bids: levels(Side.Buy), asks: levels(Side.Sell) };
}

async function expectBookMatchesEngine(base: string, actor: Parameters<typeof engineLevels>[0]): Promise<void> {
  const b = await book(base, 1000);
  expect({ bids: b.bids, asks: b.asks }).toEqual(engineLevels(actor));
}

// -------------------------------------------------------------------------------------------------

describe('two PATCHes of one order at once', () => {
  it('a PATCH {qty} size increase whose refused reduction is durable before a concurrent PATCH {price} keeps the new price (no lost update)', async () => {
    const { server, g, actor } = await startGated();
    const alice = new Client(server.url, ALICE);
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const id = a.order.orderId;

    g.gate.holdAll = true;
    const before = actor.processedSeq;
    // 1. The size increase: its first attempt (a reduction) is processed and refused AMEND_NOT_REDUCING.
    const grow = alice.amend(id, { qty: 15 });
    await until(() => actor.processedSeq >= before + 1, 'the reduction attempt to be processed');
    // 2. The price change arrives: processed in the next batch, or waiting for the increase to finish.
    const move = alice.amend(id, { price: 1005 });
    await until(() => actor.processedSeq >= before + 2 || server.gateway.amendmentsInFlight >= 2, 'the price change to be processed or queued');
    // 3. Only the first batch becomes durable (the writers sync one batch at a time; the next stays held).
    g.release();
    await until(() => actor.durableSeq >= before + 1, 'the first batch to be durable');
    // The gateway then sends the increase's second command.
    await until(() => actor.processedSeq >= before + 2, 'the next command to be processed');
    openGate(g);
    const [rg, rm] = await Promise.all([grow, move]);
    expect(rm.status).toBe(200);
    expect(rm.body.order).toMatchObject({ price: 1005 });
    expect(rg.status).toBe(200);

    // Both amendments were answered 200: in either serial order the result is 15 lots at 1005.
    // The size increase must not move the order back to the price the gateway's (lagging) view held.
    const final = await alice.order(id);
    expect(final).toMatchObject({ price: 1005, remainingQty: 15, status: 'open' });
    expect(actor.book.getOrder(id)).toMatchObject({ price: 1005, qty: 15 });
    await expectBookMatchesEngine(server.url, actor);
  }, 30_000);

  it('two PATCH {price} at once: both answered, applied in the order sent, GET and the engine agree', async () => {
    const { server, g, actor } = await startGated();
    const alice = new Client(server.url, ALICE);
    const a = await alice.place({ side: 'buy', price: 1000, qty: 10 });
    g.gate.holdAll = true;
    const before = actor.processedSeq;
    const p1 = alice.amend(a.order.orderId, { price: 1001 });
    await until(() => actor.processedSeq >= before + 1, 'the first PATCH to be processed');
    // The second waits for the first (one amendment of an order at a time).
    const p2 = alice.amend(a.order.orderId, { price: 1002, qty: 7 });
    await until(() => server.gateway.amendmentsInFlight >= 2, 'the second PATCH to be taken');
    openGate(g);
    const [r1, r2] = await Promise.all([p1, p2]);
    expect(r1.status).toBe(200);
    expect(r2.status).toBe(200);
    expect(r1.body.events?.find((e) => e.type === 'amended')).toMatchObject({ price: 1001, qty: 10 });
    expect(r2.body.events?.find((e) => e.type === 'amended')).toMatchObject({ price: 1002, qty: 7 });
    expect(await alice.order(a.order.orderId)).toMatchObject({ price: 1002, remainingQty: 7, qty: 7, filledQty: 0, status: 'open' });
    expect(actor.book.getOrder(a.order.orderId)).toMatchObject({ price: 1002, qty: 7 });
    await expectBookMatchesEngine(server.url, actor);
    expect(await commandCount(server.url, 'amend', 'ok')).toBe(2);
  }, 30_000);

  it('a PATCH {qty} increase and a PATCH {qty} reduction at once: both answered, applied in the order sent', async () => {
    const { server, g, actor, alice, id, grow } = await growHeld('buy');
    const shrink = alice.amend(id, { qty: 4 });
    await until(() => server.gateway.amendmentsInFlight >= 2, 'the reduction to be taken');
    openGate(g);
    const [rg, rs] = await Promise.all([grow, shrink]);
    expect(rs.status).toBe(200);
    expect(rg.status).toBe(200);
    // In the order sent: the increase (to 15), then the reduction (to 4).
    expect(rg.body.order).toMatchObject({ remainingQty: 15 });
    expect(await alice.order(id)).toMatchObject({ price: 1000, remainingQty: 4 });
    expect(actor.book.getOrder(id)).toMatchObject({ price: 1000, qty: 4 });
    await expectBookMatchesEngine(server.url, actor);
    expect(await commandCount(server.url, 'amend', 'ok')).toBe(2);
    expect(await commandCount(server.url, 'amend', 'rejected')).toBe(0);
  }, 30_000);
});

describe('PATCH racing DELETE', () => {
  it('a PATCH {qty} increase whose second command comes after a concurrent DELETE does not bring the order back', async () => {
    const { server, g, actor, alice, id, before, grow } = await growHeld();
    const del = alice.cancel(id);
    await until(() => actor.processedSeq >= before + 2, 'the cancel to be processed');
    g.release(); // the first batch only: the gateway then sends the increase's second command
    await until(() => actor.durableSeq >= before + 1 && actor.processedSeq >= before + 3, 'the second attempt to be processed');
    openGate(g);
    const [rg, rd] = await Promise.all([grow, del]);
    expect(rd.status).toBe(200);
    expect(rd.body.order).toMatchObject({ status: 'canceled', remainingQty: 0 });
    expect(rg.status).toBe(404);
    expect(rg.body.error?.code).toBe('ORDER_NOT_FOUND');
    expect(await alice.order(id)).toMatchObject({ status: 'canceled', remainingQty: 0 });
    expect(actor.book.getOrder(id)).toBeUndefined();
    await expectBookMatchesEngine(server.url, actor);
    expect(await commandCount(server.url, 'cancel', 'ok')).toBe(1);
    expect((await commandCount(server.url, 'amend', 'ok')) + (await commandCount(server.url, 'amend', 'rejected'))).toBe(1);
  }, 30_000);

  it('PATCH {price} then DELETE, both processed before either is durable: 200 and 200, canceled at the end; DELETE then PATCH: 404 for the PATCH', async () => {
    const { server, g, actor } = await startGated();
    const alice = new Client(server.url, ALICE);
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const b = await alice.place({ side: 'sell', price: 1000, qty: 3 });
    g.gate.holdAll = true;
    let before = actor.processedSeq;
    const move = alice.amend(a.order.orderId, { price: 1007 });
    await until(() => actor.processedSeq >= before + 1, 'the PATCH');
    const del = alice.cancel(a.order.orderId);
    await until(() => actor.processedSeq >= before + 2, 'the DELETE');
    before = actor.processedSeq;
    const del2 = alice.cancel(b.order.orderId);
    await until(() => actor.processedSeq >= before + 1, 'the second DELETE');
    const move2 = alice.amend(b.order.orderId, { price: 1009 });
    await until(() => actor.processedSeq >= before + 2, 'the second PATCH');
    openGate(g);
    const [rm, rd, rd2, rm2] = await Promise.all([move, del, del2, move2]);
    expect(rm.status).toBe(200);
    expect(rd.status).toBe(200);
    expect(rd2.status).toBe(200);
    expect(rm2.status).toBe(404);
    expect(await alice.order(a.order.orderId)).toMatchObject({ status: 'canceled', price: 1007 });
    expect(await alice.order(b.order.orderId)).toMatchObject({ status: 'canceled', price: 1000 });
    expect(actor.book.orderCount).toBe(0);
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  }, 30_000);
});

describe('PATCH racing a fill by another user', () => {
  /**
   * Alice's resting sell of 10 at 1000 gets a PATCH {qty: 15}; Bob's buy of `fillQty` at 1000 is
   * processed between the PATCH's two commands. Resolves with both answers once all is durable.
   */
  async function growAgainstFill(fillQty: number): Promise<{ server: RunningServer; actor: Actor; orderId: number; rg: Res; rf: Res }> {
    const { server, g, actor, id, before, grow } = await growHeld();
    const bob = new Client(server.url, BOB);
    const fill = bob.post({ side: 'buy', price: 1000, qty: fillQty });
    await until(() => actor.processedSeq >= before + 2, 'the fill');
    g.release();
    await until(() => actor.durableSeq >= before + 1 && actor.processedSeq >= before + 3, 'the second attempt to be processed');
    openGate(g);
    const [rg, rf] = await Promise.all([grow, fill]);
    return { server, actor, orderId: id, rg, rf };
  }

  it('a PATCH {qty} increase against a partial fill processed between its two commands: the new open quantity, the fill kept', async () => {
    const { server, actor, orderId, rg, rf } = await growAgainstFill(6);
    expect(rf.status).toBe(200);
    expect(rf.body.order).toMatchObject({ status: 'filled', filledQty: 6 });
    expect(rg.status).toBe(200);
    const o = await new Client(server.url, ALICE).order(orderId);
    expect(o).toMatchObject({ price: 1000, filledQty: 6, remainingQty: 15, qty: 21 });
    expect(actor.book.getOrder(orderId)).toMatchObject({ price: 1000, qty: 15 });
    await expectBookMatchesEngine(server.url, actor);
  }, 30_000);

  it('a PATCH {qty} increase against a fill that ends the order between its two commands: 404, the order filled, nothing re-placed', async () => {
    const { server, actor, orderId, rg, rf } = await growAgainstFill(10);
    expect(rf.status).toBe(200);
    expect(rg.status).toBe(404);
    expect(await new Client(server.url, ALICE).order(orderId)).toMatchObject({ status: 'filled', filledQty: 10, remainingQty: 0 });
    expect(actor.book.orderCount).toBe(0);
    await expectBookMatchesEngine(server.url, actor);
  }, 30_000);

  it('a PATCH {price} and a crossing order sent at the same time, the PATCH first: the fill is at the new price and GET agrees', async () => {
    const { server, g, actor } = await startGated();
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    g.gate.holdAll = true;
    const before = actor.processedSeq;
    const move = alice.amend(a.order.orderId, { price: 990 });
    await until(() => actor.processedSeq >= before + 1, 'the PATCH');
    const fill = bob.post({ side: 'buy', price: 995, qty: 4 });
    await until(() => actor.processedSeq >= before + 2, 'the fill');
    openGate(g);
    const [rm, rf] = await Promise.all([move, fill]);
    expect(rm.status).toBe(200);
    expect(rf.status).toBe(200);
    expect(rf.body.events?.find((e) => e.type === 'trade')).toMatchObject({ price: 990, qty: 4 });
    expect(await alice.order(a.order.orderId)).toMatchObject({ price: 990, filledQty: 4, remainingQty: 6, status: 'partially_filled' });
    expect(actor.book.getOrder(a.order.orderId)).toMatchObject({ price: 990, qty: 6 });
    await expectBookMatchesEngine(server.url, actor);
  }, 30_000);
});

describe('clientOrderId sent concurrently over HTTP and WebSocket', () => {
  it('the same order twice (HTTP, then WebSocket while the first is not durable): one order, the second answered as a duplicate of it', async () => {
    const { server, g, actor } = await startGated();
    const alice = new Client(server.url, ALICE);
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
    closers.push(() => ws.close());
    const order = { symbol: SYM, side: 'buy' as const, type: 'limit' as const, price: 1000, qty: 3, clientOrderId: 'cid-1' };
    g.gate.holdAll = true;
    const before = actor.processedSeq;
    const viaHttp = alice.post(order);
    await until(() => actor.processedSeq >= before + 1, 'the HTTP order to be processed');
    const viaWs = ws.call({ op: 'order', order });
    // The WebSocket order must not reach the engine.
    const viaWs2 = ws.call({ op: 'order', order: { ...order, qty: 4 } });
    const refused = await viaWs2;
    expect(refused.ok).toBe(false);
    expect(refused.error?.code).toBe('DUPLICATE_CLIENT_ORDER_ID');
    expect(actor.lastSubmittedSeq).toBe(before + 1);
    openGate(g);
    const [h, w] = await Promise.all([viaHttp, viaWs]);
    expect(h.status).toBe(200);
    expect(h.body.duplicate).toBeUndefined();
    expect(w.ok).toBe(true);
    expect(w.duplicate).toBe(true);
    expect(w.order?.orderId).toBe(h.body.order?.orderId);
    expect(actor.book.orderCount).toBe(1);
    expect(await book(server.url)).toMatchObject({ bids: [[1000, 3]] });
    expect(await commandCount(server.url, 'limit', 'ok')).toBe(1);
    // The next order gets the next id (none was used by the duplicate).
    const next = await alice.place({ side: 'buy', price: 900, qty: 1 });
    expect(next.order.orderId).toBe((h.body.order?.orderId as number) + 1);
  }, 30_000);

  it('WebSocket first, HTTP second with a different body: 409 for the HTTP request, one order', async () => {
    const { server, g, actor } = await startGated();
    const alice = new Client(server.url, ALICE);
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
    closers.push(() => ws.close());
    const order = { symbol: SYM, side: 'sell' as const, type: 'limit' as const, price: 1200, qty: 2, clientOrderId: 'cid-2' };
    g.gate.holdAll = true;
    const before = actor.processedSeq;
    const viaWs = ws.call({ op: 'order', order });
    await until(() => actor.processedSeq >= before + 1, 'the WebSocket order to be processed');
    const viaHttp = await alice.post({ ...order, price: 1300 });
    expect(viaHttp.status).toBe(409);
    expect(viaHttp.body.error?.code).toBe('DUPLICATE_CLIENT_ORDER_ID');
    openGate(g);
    const w = await viaWs;
    expect(w.ok).toBe(true);
    expect(actor.book.orderCount).toBe(1);
    expect(await book(server.url)).toMatchObject({ asks: [[1200, 2]] });
  }, 30_000);
});

describe('orders not durable yet', () => {
  it('a DELETE of an order id assigned but not durable: the answer agrees with what happened to the order', async () => {
    const { server, g, actor } = await startGated();
    const alice = new Client(server.url, ALICE);
    const first = await alice.place({ side: 'buy', price: 900, qty: 1 });
    const nextId = first.order.orderId + 1;
    g.gate.holdAll = true;
    const before = actor.processedSeq;
    const placed = alice.post({ side: 'buy', price: 1000, qty: 2 });
    await until(() => actor.processedSeq >= before + 1, 'the order to be processed');
    const del = alice.cancel(nextId);
    const getEarly = await alice.get(nextId);
    openGate(g);
    const [rp, rd] = await Promise.all([placed, del]);
    expect(rp.status).toBe(200);
    expect(rp.body.order?.orderId).toBe(nextId);
    // Whatever the DELETE answered must be what happened: 200 and canceled, or 404 and still open.
    const after = await alice.order(nextId);
    if (rd.status === 200) {
      expect(after.status).toBe('canceled');
      expect(actor.book.getOrder(nextId)).toBeUndefined();
    } else {
      expect(rd.status).toBe(404);
      expect(after.status).toBe('open');
      expect(actor.book.getOrder(nextId)).toMatchObject({ qty: 2 });
    }
    // GET did not show the order before it was durable.
    expect(getEarly.status).toBe(404);
    await expectBookMatchesEngine(server.url, actor);
  }, 30_000);
});

describe('backpressure', () => {
  it('a WebSocket batch larger than the mailbox: BACKPRESSURE orders are not taken (no order, no id used, the client order id free again), metrics agree', async () => {
    const { server, actor } = await startGated({ mailboxSize: 4 });
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
    closers.push(() => ws.close());
    const orders = Array.from({ length: 10 }, (_, i) => ({ symbol: SYM, side: 'buy', type: 'limit', price: 1000 + i, qty: 1, clientOrderId: `bp-${i}` }));
    const r = await ws.call({ op: 'order', order: orders });
    const results = r.results as WsMsg[];
    expect(results).toHaveLength(10);
    const ok = results.filter((x) => x.ok === true);
    const refused = results.filter((x) => x.ok === false);
    expect(refused.length).toBeGreaterThan(0);
    for (const x of refused) expect(x.error).toMatchObject({ code: 'BACKPRESSURE', retryAfter: 1 });
    expect(ok.length + refused.length).toBe(10);
    expect(actor.book.orderCount).toBe(ok.length);
    const ids = ok.map((x) => x.order?.orderId as number).sort((p, q) => p - q);
    expect(ids).toEqual(ids.map((_, i) => (ids[0] as number) + i));
    await expectBookMatchesEngine(server.url, actor);
    expect(await commandCount(server.url, 'limit', 'ok')).toBe(ok.length);
    expect(await commandCount(server.url, 'limit', 'refused')).toBe(refused.length);
    // Retrying the refused ones with the same client order ids places them (not duplicates), with the next ids.
    const retry = orders.filter((_, i) => results[i]?.ok === false);
    const r2 = await ws.call({ op: 'order', order: retry.slice(0, 3) });
    for (const x of r2.results as WsMsg[]) {
      expect(x.ok).toBe(true);
      expect(x.duplicate).toBeUndefined();
    }
    expect((r2.results as WsMsg[]).map((x) => x.order?.orderId)).toEqual([1, 2, 3].map((k) => (ids[ids.length - 1] as number) + k));
    expect(actor.book.orderCount).toBe(ok.length + 3);
  }, 30_000);
});

describe('graceful shutdown with requests in flight', () => {
  it('a PATCH {qty} size increase in flight when the shutdown begins is finished (200, applied), not refused half-way', async () => {
    const { server, g, actor, id, grow } = await growHeld();
    const closed = server.close();
    openGate(g);
    const r = await grow;
    await within(closed, 15_000, 'server.close()');
    // README: on SIGTERM the server lets in-flight requests finish. The PATCH was in flight.
    expect({ status: r.status, error: r.body.error?.code }).toEqual({ status: 200, error: undefined });
    expect(actor.book.getOrder(id)).toMatchObject({ price: 1000, qty: 15 });
  }, 30_000);

  it('a WebSocket order and an HTTP cancel in flight when the shutdown begins are answered as the engine did them', async () => {
    const { server, g, actor } = await startGated();
    const alice = new Client(server.url, ALICE);
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
    g.gate.holdAll = true;
    const before = actor.processedSeq;
    const viaWs = ws.call({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'limit', price: 900, qty: 2 } });
    const del = alice.cancel(a.order.orderId);
    await until(() => actor.processedSeq >= before + 2, 'both to be processed');
    const closed = server.close();
    openGate(g);
    const [w, d] = await Promise.all([viaWs, del]);
    await within(closed, 15_000, 'server.close()');
    expect(w.ok).toBe(true);
    expect(d.status).toBe(200);
    expect(actor.book.getOrder(a.order.orderId)).toBeUndefined();
    expect(actor.book.getOrder(w.order?.orderId as number)).toMatchObject({ price: 900, qty: 2 });
    await ws.close();
  }, 30_000);
});

// -------------------------------------------------------------------------------------------------

/**
 * Makes the next two commands durable in the same fsync: a pad command (Carol's far-away order) is
 * processed first with its fsync held; the two commands sent next wait in the writers behind it;
 * releasing the pad's fsync starts one fsync that covers both.
 */
describe('a PATCH {qty} size increase whose refusal is durable together with a DELETE or a fill', () => {
  async function race(other: (server: RunningServer, orderId: number) => Promise<Awaited<ReturnType<Client['post']>>>): Promise<{ rg: Awaited<ReturnType<Client['amend']>>; ro: Awaited<ReturnType<Client['post']>>; server: RunningServer; actor: Actor; orderId: number }> {
    const { server, g, actor } = await startGated();
    const alice = new Client(server.url, ALICE);
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    g.gate.holdAll = true;
    const before = actor.processedSeq;
    const pad = new Client(server.url, BOB).post({ side: 'buy', price: 100, qty: 1 });
    await until(() => actor.processedSeq >= before + 1 && g.held() >= 2, "the pad's fsyncs to be held");
    const grow = alice.amend(a.order.orderId, { qty: 15 });
    await until(() => actor.processedSeq >= before + 2, 'the reduction attempt');
    const o = other(server, a.order.orderId);
    await until(() => actor.processedSeq >= before + 3, 'the other command');
    openGate(g);
    const [rg, ro] = await Promise.all([grow, o]);
    expect((await pad).status).toBe(200);
    return { rg, ro, server, actor, orderId: a.order.orderId };
  }

  it('with a DELETE: the PATCH is answered 404 ORDER_NOT_FOUND (the order is gone), as when the DELETE comes a moment later', async () => {
    const { rg, ro, server, actor, orderId } = await race((server, id) => new Client(server.url, ALICE).cancel(id));
    expect(ro.status).toBe(200);
    expect(await new Client(server.url, ALICE).order(orderId)).toMatchObject({ status: 'canceled' });
    expect(actor.book.getOrder(orderId)).toBeUndefined();
    // Not 409 REJECTED "AMEND_NOT_REDUCING": the request was a size increase, refused because the order had ended.
    expect({ status: rg.status, code: rg.body.error?.code }).toEqual({ status: 404, code: 'ORDER_NOT_FOUND' });
  }, 30_000);

  it('with a fill that ends the order: the PATCH is answered 404 ORDER_NOT_FOUND', async () => {
    const { rg, ro, server, actor, orderId } = await race((server) => new Client(server.url, BOB).post({ side: 'buy', price: 1000, qty: 10 }));
    expect(ro.status).toBe(200);
    expect(await new Client(server.url, ALICE).order(orderId)).toMatchObject({ status: 'filled', filledQty: 10 });
    expect(actor.book.getOrder(orderId)).toBeUndefined();
    expect({ status: rg.status, code: rg.body.error?.code }).toEqual({ status: 404, code: 'ORDER_NOT_FOUND' });
  }, 30_000);
});

describe('backpressure and requests of two commands', () => {
  it('a PATCH {qty} size increase answered 503 BACKPRESSURE took no command (README: nothing was logged)', async () => {
    const { server, actor } = await startGated({ mailboxSize: 1 });
    const alice = new Client(server.url, ALICE);
    const bob = new KeyStore(API_KEYS).authenticate(BOB);
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const before = actor.lastSubmittedSeq;
    // When the reduction attempt becomes durable, another client's order fills the one-slot mailbox
    // before the gateway sends the second command (the durable listeners run before the answers' continuations).
    let filler: Promise<unknown> | undefined;
    const off = actor.onDurable((seq) => {
      if (filler === undefined && seq >= before + 1) filler = server.gateway.place(bob, { symbol: SYM, side: 'buy', type: 'limit', price: 200, qty: 1, tif: 'GTC', stp: 'NONE', clientOrderId: undefined });
    });
    const r = await alice.amend(a.order.orderId, { qty: 15 });
    off();
    await filler;
    if (r.status === 503) {
      expect(r.body.error?.code).toBe('BACKPRESSURE');
      // Not taken: only the filler's command was logged, none of the PATCH's.
      expect(actor.lastSubmittedSeq - before).toBe(1);
    } else {
      expect(r.status).toBe(200);
      expect(actor.book.getOrder(a.order.orderId)).toMatchObject({ qty: 15 });
    }
    expect(actor.book.getOrder(a.order.orderId)).toMatchObject({ price: 1000 });
  }, 30_000);

  it('a WebSocket batch whose order with a client order id is refused BACKPRESSURE: a later order of the batch with that id is not told 409 (no order used it)', async () => {
    const { server, actor } = await startGated({ mailboxSize: 2 });
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
    closers.push(() => ws.close());
    const o = (price: number, clientOrderId?: string): Record<string, unknown> => ({ symbol: SYM, side: 'buy', type: 'limit', price, qty: 1, ...(clientOrderId === undefined ? {} : { clientOrderId }) });
    const r = await ws.call({ op: 'order', order: [o(1000), o(1001), o(1002, 'c'), o(1003, 'c')] });
    const results = r.results as WsMsg[];
    expect(results[0]?.ok).toBe(true);
    expect(results[1]?.ok).toBe(true);
    expect(results[2]?.error?.code).toBe('BACKPRESSURE');
    expect(actor.book.orderCount).toBe(2);
    // No order ever used "c": the fourth is refused for the mailbox, not as a reuse of the id.
    expect(results[3]?.error?.code).toBe('BACKPRESSURE');
  }, 30_000);
});
