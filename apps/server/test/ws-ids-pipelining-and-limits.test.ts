// The WebSocket API's protocol, from a review (ws.ts, with gateway.ts and market-state.ts behind it):
// request ids of every kind, empty, whitespace, binary and invalid UTF-8 frames, pipelined frames of
// every kind on one connection, arrays of orders with client order ids across frames in flight,
// subscription edge cases, re-authentication, a connection closed while its orders are in flight,
// a slow consumer of a busy book, and the rate limits a frame is counted against.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import {
  ALICE,
  API_KEYS,
  BOB,
  book,
  CAROL,
  Client,
  gatedIO,
  metricSample,
  removeTmpDirs,
  request,
  SEGMENT,
  silentLogger,
  start,
  SYM,
  TEST_INSTRUMENT,
  tmpDir,
  until,
  WsClient,
  wsUrl,
  type TestServer,
  type WsMsg,
} from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function server(settings: Record<string, unknown> = {}, dir?: string): Promise<TestServer> {
  const s = await start(settings, dir);
  let closed = false;
  const close = async (): Promise<void> => {
    if (!closed) await s.close();
    closed = true;
  };
  closers.push(close);
  return { ...s, close };
}

/** A server whose fsyncs can be held back (commands processed, not durable, until released). */
async function gatedServer(dataDir = tmpDir()): Promise<{ s: Awaited<ReturnType<typeof startServer>>; g: ReturnType<typeof gatedIO>; close: () => Promise<void>; dataDir: string }> {
  const g = gatedIO();
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir, apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
  const s = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: g.io } });
  let closed = false;
  const close = async (): Promise<void> => {
    g.gate.holdAll = false;
    g.release();
    if (!closed) await s.close();
    closed = true;
  };
  closers.push(close);
  return { s, g, close, dataDir };
}

async function connect(s: { url: string }, query = ''): Promise<WsClient> {
  const c = await WsClient.connect(wsUrl(s.url, query));
  closers.push(() => c.close());
  return c;
}

const limit = (side: 'buy' | 'sell', price: number, qty: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ symbol: SYM, side, type: 'limit', price, qty, ...extra });

/** Everything the server sent before now has arrived (a ping's pong comes after it). */
async function drained(c: WsClient): Promise<void> {
  expect(await c.call({ op: 'ping' })).toMatchObject({ pong: true });
}

/** A book rebuilt from one connection's snapshots and updates; records every gap. */
function mirror(received: readonly WsMsg[]): { seq: number; bids: [number, number][]; asks: [number, number][]; problems: string[] } {
  let seq = -1;
  const bids = new Map<number, number>();
  const asks = new Map<number, number>();
  const problems: string[] = [];
  for (const m of received) {
    if (m.type === 'book.snapshot') {
      seq = m.seq ?? -1;
      bids.clear();
      asks.clear();
      for (const [p, q] of m.bids ?? []) bids.set(p, q);
      for (const [p, q] of m.asks ?? []) asks.set(p, q);
    } else if (m.type === 'book.update') {
      if (m.seq !== seq + 1) problems.push(`update ${m.seq} after ${seq}`);
      seq = m.seq ?? -1;
      for (const [side, levels] of [
        [bids, m.bids],
        [asks, m.asks],
      ] as const) {
        for (const [p, q] of levels ?? []) {
          if (q === 0) side.delete(p);
          else side.set(p, q);
        }
      }
    }
  }
  const sort = (m: Map<number, number>, desc: boolean): [number, number][] => [...m].sort((a, b) => (desc ? b[0] - a[0] : a[0] - b[0]));
  return { seq, bids: sort(bids, true), asks: sort(asks, false), problems };
}

async function wsConnections(url: string): Promise<number | undefined> {
  return metricSample((await request(url, 'GET', '/metrics')).text, 'gx3_ws_connections');
}

describe('request ids', () => {
  it('strings and numbers (fractions, the empty string, long ones) are echoed as JSON reads them; other kinds are refused VALIDATION without an id; two requests under one id are each answered once', async () => {
    const s = await server();
    const c = await connect(s, `?apiKey=${ALICE}`);
    for (const t of ['{"op":"ping","id":1.5}', '{"op":"ping","id":""}', '{"op":"ping","id":-7}', '{"op":"ping","id":12345678901234567890}', '{"op":"ping","id":"a","id":"b"}']) c.send(t);
    await drained(c);
    expect(c.received.slice(0, 5)).toEqual([
      { id: 1.5, pong: true },
      { id: '', pong: true },
      { id: -7, pong: true },
      { id: JSON.parse("12345678901234567890") as number, pong: true },
      { id: 'b', pong: true },
    ]);
    const before = c.received.length;
    for (const t of ['{"op":"ping","id":null}', '{"op":"ping","id":true}', '{"op":"ping","id":[1]}', '{"op":"ping","id":{"a":1}}', '{"op":"ping","id":1e400}']) c.send(t);
    await drained(c);
    const refused = c.received.slice(before, before + 5);
    expect(refused).toEqual(Array.from({ length: 5 }, () => ({ error: { code: 'VALIDATION', message: 'id: must be a string or a number' } })));

    // One id used twice: two answers, each once, each its own.
    c.send({ op: 'order', id: 'same', order: limit('buy', 500, 1) });
    c.send({ op: 'order', id: 'same', order: limit('buy', 501, 2) });
    await until(() => c.all((m) => m.id === 'same').length === 2, 'both answers');
    await drained(c);
    const both = c.all((m) => m.id === 'same');
    expect(both).toHaveLength(2);
    expect(both.map((m) => [m.ok, m.order?.price, m.order?.qty]).sort()).toEqual([
      [true, 500, 1],
      [true, 501, 2],
    ]);

    // A long id on an array frame comes back once, whole.
    const long = `L${'x'.repeat(100_000)}`;
    c.send({ op: 'order', id: long, order: [limit('buy', 502, 1), limit('buy', 0, 1)] });
    const ans = await c.next((m) => m.id === long, 'the answer to the long id');
    expect(ans.results?.map((r) => r.ok)).toEqual([true, false]);
    expect(ans.results?.[1]?.error?.message).toMatch(/^order\[1\]\.price: /);
  });
});

describe('frames that hold no request', () => {
  it('empty, whitespace-only, BOM-prefixed and binary frames (even of JSON) get a typed error each, carry nothing out, and the connection stays usable', async () => {
    const s = await server();
    const c = await connect(s, `?apiKey=${ALICE}`);
    for (const t of ['', ' ', '\n\t ', '\uFEFF{"op":"ping"}']) c.send(t);
    c.ws.send(Buffer.from(JSON.stringify({ op: 'order', id: 'bin', order: limit('buy', 500, 1) })), { binary: true });
    c.ws.send(Buffer.alloc(0), { binary: true });
    await drained(c);
    const errors = c.received.filter((m) => m.error !== undefined);
    expect(errors.map((m) => m.error?.code)).toEqual(['MALFORMED_JSON', 'MALFORMED_JSON', 'MALFORMED_JSON', 'MALFORMED_JSON', 'UNSUPPORTED_MEDIA_TYPE', 'UNSUPPORTED_MEDIA_TYPE']);
    expect(c.all((m) => m.id === 'bin')).toEqual([]);
    expect((await book(s.url)).bids).toEqual([]);
    expect(await c.call({ op: 'order', order: limit('buy', 500, 1) })).toMatchObject({ ok: true });
    expect(c.closeInfo).toBeUndefined();
  });

  it('a text frame that is not UTF-8 closes that connection with 1007, frees its place, and the others go on', async () => {
    const s = await server();
    const bad = await connect(s, `?apiKey=${ALICE}`);
    const other = await connect(s, `?apiKey=${ALICE}`);
    bad.ws.on('error', () => undefined);
    expect(await wsConnections(s.url)).toBe(2);
    bad.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    await until(() => bad.closeInfo !== undefined, 'the close');
    expect(bad.closeInfo?.code).toBe(1007);
    await until(async () => (await wsConnections(s.url)) === 1, 'the connection counted out');
    expect(await other.call({ op: 'ping' })).toMatchObject({ pong: true });
  });
});

describe('pipelined frames on one connection', () => {
  it('orders, arrays, cancels, amends (one and two commands), pings and subscriptions sent at once: each answered once under its id, each carried out as if sent one by one', async () => {
    const { s, g } = await gatedServer();
    const c = await connect(s, `?apiKey=${ALICE}`);
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) ids.push((await c.call({ op: 'order', order: limit('buy', 1000 + i, 5) })).order?.orderId as number);
    // Held fsyncs: everything below is taken before any of it is durable.
    g.gate.holdAll = true;
    const frames: Record<string, unknown>[] = [
      { op: 'cancel', id: 'c0', symbol: SYM, orderId: ids[0] },
      { op: 'order', id: 1, order: limit('sell', 2000, 1) },
      { op: 'amend', id: 'a1', symbol: SYM, orderId: ids[1], qty: 2 }, // a reduction
      { op: 'order', id: 2, order: [limit('sell', 2001, 1), limit('sell', 0, 1), limit('sell', 2002, 1)] },
      { op: 'amend', id: 'a2', symbol: SYM, orderId: ids[2], qty: 9 }, // a size increase: two commands
      { op: 'ping', id: 'p' },
      { op: 'amend', id: 'a3', symbol: SYM, orderId: ids[3], price: 1500 },
      { op: 'subscribe', id: 's', channel: 'book', symbol: SYM, depth: 50 },
      { op: 'cancel', id: 'c4', symbol: SYM, orderId: ids[4] },
      { op: 'order', id: 3, order: limit('sell', 1500, 2) }, // trades with the amended a3 (1500)
      { op: 'unsubscribe', id: 'u', channel: 'trades', symbol: SYM },
    ];
    for (const f of frames) c.send(f);
    await until(() => c.received.some((m) => m.id === 's') && c.received.some((m) => m.id === 'u'), 'the acknowledgements');
    g.gate.holdAll = false;
    g.release();
    await until(() => frames.every((f) => c.received.some((m) => m.id === f.id)), 'every answer');
    await drained(c);
    for (const f of frames) expect(c.all((m) => m.id === f.id), String(f.id)).toHaveLength(1);
    const ans = (id: unknown): WsMsg => c.all((m) => m.id === id)[0] as WsMsg;
    expect(ans('c0')).toMatchObject({ ok: true, order: { status: 'canceled' } });
    expect(ans(1)).toMatchObject({ ok: true, order: { price: 2000, status: 'open' } });
    expect(ans('a1')).toMatchObject({ ok: true, order: { remainingQty: 2, price: 1001 } });
    expect(ans(2).results?.map((r) => r.ok)).toEqual([true, false, true]);
    expect(ans('a2')).toMatchObject({ ok: true, order: { remainingQty: 9, price: 1002 } });
    expect(ans('p')).toEqual({ id: 'p', pong: true });
    expect(ans('a3')).toMatchObject({ ok: true, order: { price: 1500 } });
    expect(ans('s')).toMatchObject({ ok: true, subscribed: true });
    expect(ans('c4')).toMatchObject({ ok: true, order: { status: 'canceled' } });
    expect(ans(3)).toMatchObject({ ok: true, order: { status: 'filled', filledQty: 2 } });
    expect(ans('u')).toMatchObject({ ok: true, subscribed: false });
    const now = await book(s.url, 50);
    expect(now).toEqual({
      seq: now.seq,
      bids: [
        [1500, 3],
        [1002, 9],
        [1001, 2],
      ],
      asks: [
        [2000, 1],
        [2001, 1],
        [2002, 1],
      ],
    });
    // The subscription taken in the middle: its snapshot and updates give the same book.
    const m = mirror(c.received);
    expect(m.problems).toEqual([]);
    expect({ seq: m.seq, bids: m.bids, asks: m.asks }).toEqual(now);
  });
});

describe('arrays of orders and client order ids', () => {
  it('across frames in flight: the same order under an id is a duplicate of the first (one order), another order 409; an id whose first use failed validation is free for the next order of the frame', async () => {
    const { s, g } = await gatedServer();
    const c = await connect(s, `?apiKey=${ALICE}`);
    const other = await connect(s, `?apiKey=${ALICE}`);
    g.gate.holdAll = true;
    c.send({ op: 'order', id: 'f1', order: [limit('buy', 700, 1, { clientOrderId: 'x' }), limit('buy', 0, 1, { clientOrderId: 'y' }), limit('buy', 701, 1, { clientOrderId: 'y' })] });
    c.send({ op: 'order', id: 'f2', order: [limit('buy', 700, 1, { clientOrderId: 'x' }), limit('buy', 702, 1, { clientOrderId: 'z' })] });
    await until(() => (s.engine.actor(SYM)?.processedSeq ?? 0) >= 3, 'the orders taken');
    // Another connection of the same user, while the first frames are not durable yet.
    other.send({ op: 'order', id: 'f3', order: [limit('buy', 703, 1, { clientOrderId: 'x' }), limit('buy', 701, 1, { clientOrderId: 'y' })] });
    await drained(other);
    expect(c.all((m) => m.id !== undefined && m.pong !== true)).toEqual([]);
    g.gate.holdAll = false;
    g.release();
    const f1 = (await c.next((m) => m.id === 'f1')).results ?? [];
    const f2 = (await c.next((m) => m.id === 'f2')).results ?? [];
    const f3 = (await other.next((m) => m.id === 'f3')).results ?? [];
    expect(f1[0]).toMatchObject({ ok: true, order: { price: 700, clientOrderId: 'x' } });
    expect(f1[0]?.duplicate).toBeUndefined();
    expect(f1[1]).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order\[1\]\.price: /) as unknown } });
    expect(f1[2]).toMatchObject({ ok: true, order: { price: 701, clientOrderId: 'y' } });
    expect(f1[2]?.duplicate).toBeUndefined();
    expect(f2[0]).toMatchObject({ ok: true, duplicate: true, order: { orderId: f1[0]?.order?.orderId } });
    expect(f2[1]).toMatchObject({ ok: true, order: { price: 702, clientOrderId: 'z' } });
    expect(f3[0]).toMatchObject({ ok: false, error: { code: 'DUPLICATE_CLIENT_ORDER_ID' } });
    expect(f3[1]).toMatchObject({ ok: true, duplicate: true, order: { orderId: f1[2]?.order?.orderId } });
    expect((await book(s.url)).bids).toEqual([
      [702, 1],
      [701, 1],
      [700, 1],
    ]);
  });
});

describe('subscriptions', () => {
  it('subscribe then unsubscribe at once: acknowledgement, snapshot, acknowledgement, then nothing; the same channel twice sends each trade and update once; unsubscribing what was never subscribed is acknowledged', async () => {
    const s = await server();
    const alice = new Client(s.url, ALICE);
    await alice.place({ side: 'sell', price: 1000, qty: 5 });
    const gone = await connect(s);
    gone.send({ op: 'subscribe', id: 's', channel: 'book', symbol: SYM, depth: 3 });
    gone.send({ op: 'subscribe', id: 't', channel: 'trades', symbol: SYM });
    gone.send({ op: 'unsubscribe', id: 'us', channel: 'book', symbol: SYM });
    gone.send({ op: 'unsubscribe', id: 'ut', channel: 'trades', symbol: SYM });
    const twice = await connect(s);
    for (const id of ['b1', 'b2']) twice.send({ op: 'subscribe', id, channel: 'book', symbol: SYM, depth: 3 });
    for (const id of ['t1', 't2']) twice.send({ op: 'subscribe', id, channel: 'trades', symbol: SYM });
    const never = await connect(s);
    expect(await never.call({ op: 'unsubscribe', channel: 'trades', symbol: SYM })).toMatchObject({ ok: true, subscribed: false });
    expect(await never.call({ op: 'unsubscribe', channel: 'book', symbol: SYM })).toMatchObject({ ok: true, subscribed: false });
    await drained(gone);
    await drained(twice);

    await new Client(s.url, BOB).place({ side: 'buy', price: 1000, qty: 2 });
    await alice.place({ side: 'sell', price: 1001, qty: 1 });
    const now = await book(s.url, 3);
    await until(() => mirror(twice.received).seq >= now.seq, 'the updates');
    await drained(gone);
    await drained(twice);

    expect(gone.received.filter((m) => m.pong !== true).map((m) => m.id ?? m.type)).toEqual(['s', 'book.snapshot', 't', 'us', 'ut']);
    expect(twice.all((m) => m.type === 'book.snapshot')).toHaveLength(2);
    const m = mirror(twice.received);
    expect(m.problems).toEqual([]);
    expect({ seq: m.seq, bids: m.bids, asks: m.asks }).toEqual(now);
    expect(twice.all((x) => x.type === 'trades').flatMap((x) => x.trades ?? []).map((t) => [t.price, t.qty])).toEqual([[1000, 2]]);
  });
});

describe('authentication frames on an authenticated connection', () => {
  it('its own key again is acknowledged; an unknown key is refused and the connection keeps its user and its orders subscription', async () => {
    const s = await server();
    const c = await connect(s, `?apiKey=${ALICE}`);
    expect(await c.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true });
    expect(await c.call({ op: 'auth', key: ALICE })).toMatchObject({ ok: true, user: 'alice' });
    expect(await c.call({ op: 'auth', key: 'not-a-key-000' })).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
    const placed = await c.call({ op: 'order', order: limit('sell', 1000, 3) });
    expect(placed).toMatchObject({ ok: true, order: { user: 'alice' } });
    await new Client(s.url, CAROL).place({ side: 'buy', price: 1000, qty: 1 });
    await until(() => c.all((m) => m.type === 'orders').some((m) => m.orders?.some((o) => o.orderId === placed.order?.orderId && o.status === 'partially_filled') === true), "alice's fill");
    expect(c.all((m) => m.type === 'orders').flatMap((m) => m.orders ?? []).every((o) => o.user === 'alice')).toBe(true);
    expect(await wsConnections(s.url)).toBe(1);
  });
});

describe('a connection closed while its orders are in flight', () => {
  it('its orders are still carried out and durable: other connections see them (book, own-order updates), a reconnection resubmitting one gets the original outcome, a restart keeps them', async () => {
    const { s, g, close, dataDir } = await gatedServer();
    const md = await connect(s);
    expect(await md.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 10 })).toMatchObject({ ok: true });
    const bobWs = await connect(s, `?apiKey=${BOB}`);
    expect(await bobWs.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true });
    const bobOrder = await new Client(s.url, BOB).place({ side: 'sell', price: 1100, qty: 3 });
    const alice = await WsClient.connect(wsUrl(s.url, `?apiKey=${ALICE}`));
    const actor = s.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    const before = actor.processedSeq;
    g.gate.holdAll = true;
    alice.send({ op: 'order', id: 1, order: limit('buy', 1000, 2, { clientOrderId: 'gone-1' }) });
    alice.send({ op: 'order', id: 2, order: [limit('buy', 1001, 1), limit('buy', 1100, 2)] });
    await until(() => actor.processedSeq >= before + 3, 'the orders taken');
    alice.ws.terminate();
    await until(() => alice.closeInfo !== undefined, 'the close');
    g.gate.holdAll = false;
    g.release();
    await until(() => actor.durableSeq >= before + 3, 'the orders durable');
    const now = await book(s.url, 10);
    expect({ bids: now.bids, asks: now.asks }).toEqual({
      bids: [
        [1001, 1],
        [1000, 2],
      ],
      asks: [[1100, 1]],
    });
    await until(() => mirror(md.received).seq >= now.seq, 'the book subscriber up to date');
    const m = mirror(md.received);
    expect({ seq: m.seq, bids: m.bids, asks: m.asks, problems: m.problems }).toEqual({ ...now, problems: [] });
    await until(() => bobWs.all((x) => x.type === 'orders').some((x) => x.orders?.some((o) => o.orderId === bobOrder.order.orderId && o.filledQty === 2) === true), "bob's fill");
    await until(async () => (await wsConnections(s.url)) === 2, 'the closed connection counted out');

    const again = await connect(s, `?apiKey=${ALICE}`);
    const retry = await again.call({ op: 'order', order: limit('buy', 1000, 2, { clientOrderId: 'gone-1' }) });
    expect(retry).toMatchObject({ ok: true, duplicate: true, order: { price: 1000, clientOrderId: 'gone-1' } });
    const ids = [retry.order?.orderId as number, (retry.order?.orderId as number) + 1, (retry.order?.orderId as number) + 2];
    const views = async (url: string): Promise<unknown[]> => Promise.all(ids.map(async (id) => (await new Client(url, ALICE).order(id)).status));
    expect(await views(s.url)).toEqual(['open', 'open', 'filled']);
    await again.close();
    await md.close();
    await bobWs.close();
    await close();
    const restarted = await server({}, dataDir);
    expect(await views(restarted.url)).toEqual(['open', 'open', 'filled']);
    expect((await book(restarted.url, 10)).bids).toEqual(now.bids);
  });
});

describe('a client that stops reading while subscribed to a busy book', () => {
  it('loses its market data with one SLOW_CONSUMER error and gets no update after it, keeps its connection, and a resubscription serves the book right again', async () => {
    const s = await server({ bodyLimit: 4 << 20 });
    const alice = new Client(s.url, ALICE);
    const bob = new Client(s.url, BOB);
    await alice.place({ side: 'buy', price: 1000, qty: 5 });
    const ws = await connect(s);
    expect(await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 20 })).toMatchObject({ ok: true });
    expect(await ws.call({ op: 'subscribe', channel: 'trades', symbol: SYM })).toMatchObject({ ok: true });
    const socket = (ws.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    // Answers it does not read fill its connection (each pong echoes a 4 MB id)...
    const big = 'x'.repeat((4 << 20) - 100);
    for (let i = 0; i < 10; i++) ws.send({ op: 'ping', id: `${i}${big}` });
    await until(async () => (metricSample((await request(s.url, 'GET', '/metrics')).text, 'gx3_ws_messages_total', { direction: 'in' }) ?? 0) >= 12, 'the pings received');
    // ...while the book is busy.
    for (let i = 0; i < 10; i++) {
      await alice.place({ side: 'buy', price: 1001 + i, qty: 1 });
      await bob.place({ side: 'sell', price: 1001 + i, qty: 1 });
    }
    socket.resume();
    await until(() => ws.received.filter((m) => typeof m.id === 'string' && m.pong === true).length >= 10, 'the pongs');
    await drained(ws);
    expect(ws.closeInfo).toBeUndefined();
    const slow = ws.received.findIndex((m) => m.error?.code === 'SLOW_CONSUMER');
    expect(slow).toBeGreaterThan(0);
    expect(ws.all((m) => m.error?.code === 'SLOW_CONSUMER')).toHaveLength(1);
    expect(ws.received.slice(slow).filter((m) => m.type === 'book.update' || m.type === 'trades')).toEqual([]);
    expect(mirror(ws.received.slice(0, slow)).problems).toEqual([]);

    const from = ws.received.length;
    expect(await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 20 })).toMatchObject({ ok: true });
    await alice.place({ side: 'buy', price: 1020, qty: 3 });
    const now = await book(s.url, 20);
    await until(() => mirror(ws.received.slice(from)).seq >= now.seq, 'the updates after the resubscription');
    const m = mirror(ws.received.slice(from));
    expect({ seq: m.seq, bids: m.bids, asks: m.asks, problems: m.problems }).toEqual({ ...now, problems: [] });
  }, 30_000);
});

describe('orders and cancels of an authenticated connection are counted by the key\'s limit alone, never the connection\'s own', () => {
  it('after book subscriptions (market data) used up the connection\'s own tokens, an order and a cancel of a key with its whole burst left are carried out', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 12 });
    const c = await connect(s, `?apiKey=${ALICE}`);
    // Two deep book subscriptions: 1 + 10 tokens each of the connection's own limit (README), none of the key's.
    expect(await c.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 10_000 })).toMatchObject({ ok: true });
    expect(await c.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 10_000 })).toMatchObject({ ok: true });
    // "The frames the key's limit does not count (ping, auth, subscriptions, ...) count against a
    // limit of the connection's own": an order counts against the key's, which has all 12 tokens.
    const placed = await c.call({ op: 'order', order: limit('buy', 1000, 1) });
    expect(placed, JSON.stringify(placed)).toMatchObject({ ok: true, order: { status: 'open' } });
    const canceled = await c.call({ op: 'cancel', symbol: SYM, orderId: placed.order?.orderId ?? 1 });
    expect(canceled, JSON.stringify(canceled)).toMatchObject({ ok: true, order: { status: 'canceled' } });
  });

  it('an order frame refused before the key\'s limit (malformed order) still costs the key a token: a flood of them is limited', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 3 });
    const c = await connect(s, `?apiKey=${ALICE}`);
    for (let i = 0; i < 3; i++) {
      // A field beside the order: refused before the key's tokens are taken.
      expect(await c.call({ op: 'order', order: limit('buy', 1000, 1), stp: 'NONE' })).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    }
    const limited = await c.call({ op: 'order', order: limit('buy', 1000, 1) });
    expect(limited, JSON.stringify(limited)).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED', message: expect.stringMatching(/API key/) as unknown } });
    // The connection's own limit was not touched: a ping passes.
    expect(await c.call({ op: 'ping' })).toMatchObject({ pong: true });
  });
});

describe('a WebSocket amend refused by validation is not charged the second token of an amendment of the quantity alone', () => {
  it('an amend frame with a misspelt price (VALIDATION, nothing taken) costs one token, as a refused PATCH does: the next order passes', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 2 });
    const c = await connect(s, `?apiKey=${ALICE}`);
    // README: "the second is charged once the request is taken"; this one is not taken.
    c.send({ op: 'amend', id: 'typo', symbol: SYM, orderId: 1, qty: 5, prce: 900 });
    c.send({ op: 'order', id: 'next', order: limit('buy', 1000, 1) });
    expect(await c.next((m) => m.id === 'typo')).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^prce: /) as unknown } });
    const next = await c.next((m) => m.id === 'next');
    expect(next, JSON.stringify(next)).toMatchObject({ ok: true, order: { status: 'open' } });
  });

});

describe('rate limits over HTTP, for comparison', () => {
  it('a PATCH of the quantity refused by validation (a misspelt price) costs one token: the next POST passes', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 2 });
    expect((await request(s.url, 'PATCH', `/v1/orders/${SYM}/1`, { key: ALICE, json: { qty: 5, prce: 900 } })).status).toBe(400);
    expect((await new Client(s.url, ALICE).post({ side: 'buy', price: 1000, qty: 1 })).status).toBe(200);
  });
});

describe('a numeric request id that JSON reads as an integer is answered under that id (ids need not be integers)', () => {
  it('{"op":"ping","id":2.0000000000000001} is answered as the id JSON reads (2), as id 1.5 is, not refused VALIDATION (ids need not be integers)', async () => {
    const s = await server();
    const c = await connect(s, `?apiKey=${ALICE}`);
    c.send('{"op":"ping","id":1.5}');
    c.send('{"op":"ping","id":2.0000000000000001}');
    c.send('{"op":"order","id":3.0000000000000001,"order":{"symbol":"TEST","side":"buy","type":"limit","price":500,"qty":1}}');
    expect(await c.next((m) => m.id === 1.5)).toEqual({ id: 1.5, pong: true });
    expect(await c.next((m) => m.id === 2)).toEqual({ id: 2, pong: true });
    expect(await c.next((m) => m.id === 3)).toMatchObject({ id: 3, ok: true, order: { price: 500 } });
  });
});
