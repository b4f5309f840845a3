// Client order ids are logged with their orders, so the de-duplication window survives a restart:
// a client that retries after a crash or a restart gets the original outcome of every order the
// engine had taken, not a second order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, book, checkBuilt, Client, removeTmpDirs, serverEnv, ServerProcess, start, SYM, TEST_INSTRUMENT, tmpDir, type Res } from './helpers.js';

afterAll(async () => {
  await ServerProcess.killAll();
  removeTmpDirs();
});

beforeAll(() => {
  checkBuilt();
});

describe('client order ids across a restart', () => {
  it('a resubmission after a graceful restart answers the original order and its events (duplicate: true), placing nothing', async () => {
    let server = await start();
    let alice = new Client(server.url, ALICE);
    const rests = await alice.post({ side: 'sell', price: 500, qty: 5, clientOrderId: 'keep-1' });
    const fok = await alice.post({ side: 'buy', price: 400, qty: 9, tif: 'FOK', clientOrderId: 'rej-2' });
    const mkt = await alice.post({ side: 'buy', type: 'market', qty: 2, clientOrderId: 'mkt-3' });
    for (const r of [rests, fok, mkt]) expect(r.status).toBe(200);
    expect(fok.body.order).toMatchObject({ status: 'rejected', reason: 'FOK_NOT_FILLABLE' });
    const bookBefore = await book(server.url);
    await server.close();

    server = await start({}, server.dataDir);
    try {
      alice = new Client(server.url, ALICE);
      // The id is on the order after the restart too.
      expect(await alice.order(rests.body.order?.orderId ?? 0)).toMatchObject({ clientOrderId: 'keep-1', remainingQty: 3, status: 'partially_filled' });

      const again = await alice.post({ side: 'sell', price: 500, qty: 5, clientOrderId: 'keep-1' });
      expect(again.status).toBe(200);
      expect(again.body.duplicate).toBe(true);
      expect(again.body.order).toMatchObject({ orderId: rests.body.order?.orderId, clientOrderId: 'keep-1' });
      expect(again.body.events).toEqual(rests.body.events);

      const mktAgain = await alice.post({ side: 'buy', type: 'market', qty: 2, clientOrderId: 'mkt-3' });
      expect(mktAgain.body).toMatchObject({ duplicate: true, order: { orderId: mkt.body.order?.orderId } });
      expect(mktAgain.body.events).toEqual(mkt.body.events);

      // A rejected order is recovered whole (its event says what it asked for), and compared as such.
      const fokAgain = await alice.post({ side: 'buy', price: 400, qty: 9, tif: 'FOK', clientOrderId: 'rej-2' });
      expect(fokAgain.body).toMatchObject({ duplicate: true, order: { ...fok.body.order } });
      expect(fokAgain.body.events).toEqual(fok.body.events);
      const fokOther = await alice.post({ side: 'buy', price: 400, qty: 9, tif: 'FOK', stp: 'CANCEL_BOTH', clientOrderId: 'rej-2' });
      expect(fokOther.status).toBe(409);

      // A different order under a recovered id is a conflict.
      // The accepted event carries the order's stp, so a different one is a conflict too.
      expect(rests.body.events?.[0]).toMatchObject({ type: 'accepted', stp: 'NONE' });
      for (const change of [{ qty: 6 }, { price: 501 }, { side: 'buy' as const }, { tif: 'IOC' as const }, { stp: 'CANCEL_BOTH' as const }]) {
        const r = await alice.post({ side: 'sell', price: 500, qty: 5, clientOrderId: 'keep-1', ...change });
        expect(r.status, JSON.stringify(change)).toBe(409);
        expect(r.body.error?.code).toBe('DUPLICATE_CLIENT_ORDER_ID');
      }
      expect(await book(server.url)).toMatchObject({ bids: bookBefore.bids, asks: bookBefore.asks });

      // Another user's id space is separate, and new orders continue the ids.
      const bob = await new Client(server.url, BOB).post({ side: 'sell', price: 500, qty: 5, clientOrderId: 'keep-1' });
      expect(bob.body.duplicate).toBeUndefined();
      expect(bob.body.order?.orderId).toBe((mkt.body.order?.orderId ?? 0) + 1);
    } finally {
      await server.close();
    }
  });

  it('the window rebuilt at start holds the newest ids across symbols, as the live window did', async () => {
    const other = { ...TEST_INSTRUMENT, symbol: 'OTHER' };
    const settings = { instruments: [TEST_INSTRUMENT, other], clientOrderIdWindow: 3 };
    let server = await start(settings);
    let alice = new Client(server.url, ALICE);
    // In time order: one on OTHER, two on TEST, one on OTHER; a window of 3 drops the first.
    const sent: [string, string, number][] = [
      [other.symbol, 'o-old', 200],
      [SYM, 't-1', 200],
      [SYM, 't-2', 201],
      [other.symbol, 'o-new', 201],
    ];
    const ids = new Map<string, number>();
    for (const [symbol, cid, price] of sent) ids.set(cid, (await alice.place({ symbol, side: 'buy', price, qty: 1, clientOrderId: cid })).order.orderId);
    await server.close();

    server = await start(settings, server.dataDir);
    try {
      alice = new Client(server.url, ALICE);
      for (const [symbol, cid, price] of [...sent].reverse()) {
        const r = await alice.post({ symbol, side: 'buy', price, qty: 1, clientOrderId: cid });
        expect(r.status).toBe(200);
        if (cid === 'o-old') expect(r.body.duplicate, 'o-old had left the window before the restart').toBeUndefined();
        else expect(r.body, cid).toMatchObject({ duplicate: true, order: { orderId: ids.get(cid) } });
      }
    } finally {
      await server.close();
    }
  });

  it('SIGKILL during a flood, then every order retried with its id: each order is in the book exactly once', async () => {
    const dataDir = tmpDir();
    const env = serverEnv(dataDir);
    const first = await ServerProcess.spawn(env);
    // Orders that never cross (buys at 100..399, sells at 5000..5299): each one taken rests.
    const N = 300;
    const orderAt = (i: number): Parameters<Client['post']>[0] => {
      const side = i % 3 === 0 ? 'sell' : 'buy';
      return { side, price: side === 'buy' ? 100 + (i % 300) : 5000 + (i % 300), qty: 1 + (i % 7), clientOrderId: `flood-${i}` };
    };
    const alice = new Client(first.url, ALICE);
    const acked = new Map<number, number>(); // i -> orderId
    let killed: Promise<unknown> | undefined;
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        alice.post(orderAt(i)).then(
          (r: Res) => {
            if (r.status === 200 && r.body.order !== undefined) acked.set(i, r.body.order.orderId);
            if (i >= 20) killed ??= first.kill('SIGKILL');
          },
          () => undefined, // cut off by the kill
        ),
      ),
    );
    await killed;
    expect(acked.size).toBeGreaterThan(0);

    const second = await ServerProcess.spawn(env);
    try {
      const retry = new Client(second.url, ALICE);
      // The client does not know which orders were taken: it retries all of them.
      const answers = await Promise.all(Array.from({ length: N }, (_, i) => retry.post(orderAt(i))));
      for (const [i, r] of answers.entries()) {
        expect(r.status, r.text).toBe(200);
        const was = acked.get(i);
        // An acknowledged order is answered as the duplicate it is, with its original id.
        if (was !== undefined) expect(r.body).toMatchObject({ duplicate: true, order: { orderId: was, clientOrderId: `flood-${i}` } });
      }
      // Each order rests exactly once: the book holds the quantity of the N orders, no more.
      const b = await book(second.url, 1000);
      const total = (levels: [number, number][]): number => levels.reduce((n, [, q]) => n + q, 0);
      const expected = Array.from({ length: N }, (_, i) => orderAt(i).qty).reduce((n, q) => n + q, 0);
      expect(total(b.bids) + total(b.asks)).toBe(expected);
      expect(new Set(answers.map((r) => r.body.order?.orderId)).size).toBe(N);
    } finally {
      await second.kill('SIGTERM');
    }
  });
});
