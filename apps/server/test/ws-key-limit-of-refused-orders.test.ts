// Review of the latest WebSocket rate-limit change (ws.ts: orders, cancels and amends of an
// authenticated connection counted by the key's limit alone, `frameCharge` / `keyTaken` /
// `chargeRefusedKeyOp`; the request id passed over by the rounded-number check).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ALICE, BOB, book, Client, removeTmpDirs, request, start, SYM, WsClient, wsUrl, type TestServer, type WsMsg } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function server(settings: Record<string, unknown> = {}): Promise<TestServer> {
  const s = await start(settings);
  closers.push(() => s.close());
  return s;
}

async function connect(s: { url: string }, query = ''): Promise<WsClient> {
  const c = await WsClient.connect(wsUrl(s.url, query));
  closers.push(() => c.close());
  return c;
}

const limit = (side: 'buy' | 'sell', price: number, qty: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ symbol: SYM, side, type: 'limit', price, qty, ...extra });

/** Sends `frames` at once (ids f0, f1, ...) and resolves with their answers, in order. */
async function burst(c: WsClient, frames: (Record<string, unknown> | string)[], tag = 'f'): Promise<WsMsg[]> {
  frames.forEach((f, i) => {
    c.send(typeof f === 'string' ? f.replace('__ID__', JSON.stringify(`${tag}${i}`)) : { ...f, id: `${tag}${i}` });
  });
  const out: WsMsg[] = [];
  for (let i = 0; i < frames.length; i++) out.push(await c.next((m) => m.id === `${tag}${i}`, `the answer to frame ${tag}${i}`));
  return out;
}

const codes = (answers: WsMsg[]): string[] => answers.map((a) => (a.ok === true ? 'ok' : (a.error?.code ?? JSON.stringify(a))));

describe('malformed order frames of an authenticated connection are counted by the key (RATE_LIMITED once its burst is spent), never free nor beyond the burst', () => {
  // ws.ts onMessage: an `order` frame of an authenticated connection no longer takes a connection
  // token; when it is refused before `rateLimit` (a field beside the order, a rounded number, an
  // empty array), chargeRefusedKeyOp() uses RateLimiter.charge(), which never refuses. The frame is
  // answered VALIDATION whatever the key has left, and the key goes into debt without bound.
  it('once the key spent its burst, a malformed order frame is RATE_LIMITED (as a malformed cancel frame, or a malformed POST, is), not answered VALIDATION for ever', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 3 });
    const c = await connect(s, `?apiKey=${ALICE}`);
    const answers = await burst(
      c,
      Array.from({ length: 12 }, () => ({ op: 'order', order: limit('buy', 1000, 1), stp: 'NONE' })),
    );
    const got = codes(answers);
    // At most the burst (plus a token refilled meanwhile) is answered VALIDATION; the rest are refused by the limit.
    expect(got.filter((x) => x === 'RATE_LIMITED').length, got.join(',')).toBeGreaterThanOrEqual(6);
  });

  it('a rounded-number order frame (refused before the key is counted) is rate limited too, not free of every limit', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 3 });
    const c = await connect(s, `?apiKey=${ALICE}`);
    const frame = '{"op":"order","id":__ID__,"order":{"symbol":"TEST","side":"buy","type":"limit","price":1000,"qty":1.0000000000000001}}';
    const got = codes(await burst(c, Array.from({ length: 12 }, () => frame)));
    expect(got.filter((x) => x === 'RATE_LIMITED').length, got.join(',')).toBeGreaterThanOrEqual(6);
  });

  it('a flood of malformed order frames does not lock the key (its HTTP orders too) out for longer than a spent burst does', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 3 });
    const c = await connect(s, `?apiKey=${ALICE}`);
    await burst(
      c,
      Array.from({ length: 40 }, () => ({ op: 'order', order: limit('buy', 1000, 1), stp: 'NONE' })),
    );
    // A key that spent its burst on valid requests waits one second (rate 1): Retry-After 1.
    const r = await new Client(s.url, ALICE).post({ side: 'buy', price: 1000, qty: 1 });
    const wait = r.headers.get('retry-after');
    expect(r.status === 200 || Number(wait) <= 2, `status ${r.status}, Retry-After ${wait}: ${r.text}`).toBe(true);
  });
});

describe('rate limits of the frames the change left to the connection or the key (guards)', () => {
  it('malformed cancel frames of an authenticated connection are refused RATE_LIMITED once the key spent its burst', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 3 });
    const c = await connect(s, `?apiKey=${ALICE}`);
    const got = codes(await burst(c, Array.from({ length: 12 }, () => ({ op: 'cancel', symbol: SYM, orderId: 1, bogus: 1 }))));
    expect(got.filter((x) => x === 'RATE_LIMITED').length, got.join(',')).toBeGreaterThanOrEqual(6);
    expect(got.every((x) => x === 'RATE_LIMITED' || x === 'VALIDATION'), got.join(',')).toBe(true);
  });

  it('order frames of an anonymous connection are counted by the connection\'s own limit (UNAUTHORIZED, then RATE_LIMITED), and no key is charged', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 3 });
    const c = await connect(s);
    const got = codes(await burst(c, Array.from({ length: 10 }, () => ({ op: 'order', order: limit('buy', 1000, 1) }))));
    expect(got.slice(0, 3)).toEqual(['UNAUTHORIZED', 'UNAUTHORIZED', 'UNAUTHORIZED']);
    expect(got.filter((x) => x === 'RATE_LIMITED').length, got.join(',')).toBeGreaterThanOrEqual(5);
    const limited = await c.call({ op: 'order', order: limit('buy', 1000, 1) });
    expect(limited.error?.message ?? '').toMatch(/connection/);
    // Alice's key was not touched: her whole burst passes over HTTP.
    const alice = new Client(s.url, ALICE);
    for (let i = 0; i < 3; i++) expect((await alice.post({ side: 'buy', price: 1000 + i, qty: 1 })).status).toBe(200);
  });

  it('a connection that authenticates mid-stream after spending its own tokens has its orders counted by the key alone', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 3 });
    const c = await connect(s);
    // Two pings and the auth frame: the connection's three tokens.
    const got = codes(
      await burst(c, [
        { op: 'ping' },
        { op: 'ping' },
        { op: 'auth', key: BOB },
        { op: 'order', order: limit('buy', 1000, 1) },
        { op: 'order', order: limit('buy', 1001, 1) },
        { op: 'order', order: limit('buy', 1002, 1) },
        { op: 'order', order: limit('buy', 1003, 1) },
      ]),
    );
    expect(got.slice(3, 6), got.join(',')).toEqual(['ok', 'ok', 'ok']);
    expect(got[6]).toBe('RATE_LIMITED');
    expect((await book(s.url)).bids).toHaveLength(3);
  });

  it('an amend of the quantity alone that is taken costs two of the key\'s tokens; one with a price costs one', async () => {
    const s = await server({ rateLimit: 1, rateBurst: 4 });
    const c = await connect(s, `?apiKey=${ALICE}`);
    const placed = await c.call({ op: 'order', order: limit('buy', 1000, 5) }); // 1
    expect(placed).toMatchObject({ ok: true });
    const id = placed.order?.orderId as number;
    expect(await c.call({ op: 'amend', symbol: SYM, orderId: id, price: 1001 })).toMatchObject({ ok: true }); // 2
    expect(await c.call({ op: 'amend', symbol: SYM, orderId: id, qty: 3 })).toMatchObject({ ok: true }); // 3, 4
    const refused = await c.call({ op: 'order', order: limit('buy', 900, 1) });
    expect(refused).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
  });
});

describe('the request id passed over by the rounded-number check, and nothing else (guards)', () => {
  it('an `id` member inside an order, or a rounded orderId of a cancel with a rounded request id, is still refused naming the member; nothing is placed', async () => {
    const s = await server();
    const c = await connect(s, `?apiKey=${ALICE}`);
    c.send('{"op":"order","id":"nested","order":{"symbol":"TEST","side":"buy","type":"limit","price":1000,"qty":1,"id":1.0000000000000001}}');
    c.send('{"op":"order","id":"arr","order":[{"symbol":"TEST","side":"buy","type":"limit","price":1000,"qty":1,"id":2.0000000000000001}]}');
    c.send('{"op":"cancel","id":4.0000000000000001,"symbol":"TEST","orderId":1.0000000000000001}');
    c.send('{"op":"order","order":{"symbol":"TEST","side":"buy","type":"limit","price":1000,"qty":1.0000000000000001},"id":5.0000000000000001}');
    expect(await c.next((m) => m.id === 'nested')).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order\.id: /) as unknown } });
    expect(await c.next((m) => m.id === 'arr')).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order\.id: /) as unknown } });
    expect(await c.next((m) => m.id === 4)).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^orderId: /) as unknown } });
    expect(await c.next((m) => m.id === 5)).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order\.qty: /) as unknown } });
    expect((await book(s.url)).bids).toEqual([]);
  });

  it('a rounded number nested in a top-level member named otherwise is not passed over, even after a numeric id', async () => {
    const s = await server();
    const c = await connect(s, `?apiKey=${ALICE}`);
    c.send('{"op":"amend","id":7.0000000000000001,"symbol":"TEST","orderId":1,"qty":2.0000000000000001}');
    expect(await c.next((m) => m.id === 7)).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^qty: /) as unknown } });
    const r = await request(s.url, 'GET', '/health');
    expect(r.status).toBe(200);
  });
});
