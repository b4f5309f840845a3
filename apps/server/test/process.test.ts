// The built server as a child process (`node dist/bin/server.js`, configured by environment
// variables, port 0: the stderr banner says where it listens). SIGKILL while orders are in flight:
// after a restart every acknowledged order is there and new ids continue above every recovered
// one. SIGTERM (and SIGINT): a graceful shutdown that exits 0, with WebSocket clients told 1001,
// and nothing acknowledged lost.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, book, checkBuilt, Client, removeTmpDirs, request, serverEnv, ServerProcess, SYM, tmpDir, within, WsClient, wsUrl, type Res } from './helpers.js';

afterAll(async () => {
  await ServerProcess.killAll();
  removeTmpDirs();
});

beforeAll(() => {
  checkBuilt();
});

const env = serverEnv;

describe('the server process', () => {
  it('SIGKILL with orders in flight: every acknowledged order is there after a restart, and ids continue above', async () => {
    const dataDir = tmpDir();
    const first = await ServerProcess.spawn(env(dataDir));
    const alice = new Client(first.url, ALICE);
    const bob = new Client(first.url, BOB);
    // Buys and sells that never cross (buys at 100..599, sells at 5000..5499): each acknowledged order rests.
    const acked = new Map<number, { key: string; side: string; price: number; qty: number }>();
    let killed: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
    const placeAt = (i: number, killOnAnswer: boolean): Promise<Res | undefined> => {
      const client = i % 2 === 0 ? alice : bob;
      const side = i % 3 === 0 ? 'sell' : 'buy';
      const price = side === 'buy' ? 100 + (i % 500) : 5000 + (i % 500);
      return client.post({ side, price, qty: 1 + (i % 7) }).then(
        (r) => {
          if (r.status !== 200 || r.body.order === undefined) throw new Error(`order ${i}: ${r.status} ${r.text}`);
          acked.set(r.body.order.orderId, { key: client.key, side, price, qty: 1 + (i % 7) });
          // Killed at the first answer of the flood: the rest of it is still in flight.
          if (killOnAnswer) killed ??= first.kill('SIGKILL');
          return r;
        },
        () => undefined, // cut off by the kill
      );
    };
    for (let i = 0; i < 20; i++) await placeAt(i, false);
    const flood = Array.from({ length: 300 }, (_, i) => placeAt(20 + i, true));
    await Promise.all(flood);
    expect((await killed)?.signal).toBe('SIGKILL');
    // Every answer that arrived, also after the signal was sent, acknowledged its order.
    expect(acked.size).toBeGreaterThan(20);
    expect(acked.size, 'the kill came after every order of the flood was answered: it tested nothing').toBeLessThan(320);

    const second = await ServerProcess.spawn(env(dataDir));
    try {
      const clients = new Map([ALICE, BOB].map((k) => [k, new Client(second.url, k)]));
      const levels = await book(second.url, 1000);
      const levelQty = new Map<string, number>([...levels.bids.map(([p, q]): [string, number] => [`buy@${p}`, q]), ...levels.asks.map(([p, q]): [string, number] => [`sell@${p}`, q])]);
      const expectedAtLeast = new Map<string, number>();
      for (const [orderId, o] of acked) {
        const view = await (clients.get(o.key) as Client).order(orderId);
        expect(view).toMatchObject({ orderId, side: o.side, price: o.price, qty: o.qty, remainingQty: o.qty, status: 'open' });
        const k = `${o.side}@${o.price}`;
        expectedAtLeast.set(k, (expectedAtLeast.get(k) ?? 0) + o.qty);
      }
      // The book holds every acknowledged order (and perhaps some that were logged but not answered).
      for (const [k, q] of expectedAtLeast) expect(levelQty.get(k) ?? 0, k).toBeGreaterThanOrEqual(q);
      const health = await request(second.url, 'GET', '/health');
      const recoveredSeq = health.body.symbols?.[SYM]?.processedSeq ?? 0;
      expect(recoveredSeq).toBeGreaterThanOrEqual(Math.max(...acked.keys()));
      // Every command is an order here, so the recovered commands are orders 1..recoveredSeq; the next id is above them all.
      const next = await (clients.get(ALICE) as Client).place({ side: 'buy', price: 100, qty: 1 });
      expect(next.order.orderId).toBe(recoveredSeq + 1);
    } finally {
      const exit = await within(second.kill('SIGTERM'), 20_000, 'the restarted server to exit on SIGTERM');
      expect(exit.code).toBe(0);
    }
  });

  it('SIGTERM: a graceful shutdown (exit 0, WebSocket clients told 1001), and nothing acknowledged is lost', async () => {
    const dataDir = tmpDir();
    const first = await ServerProcess.spawn(env(dataDir));
    expect(first.stderr).toMatch(/API keys configured for: alice, bob, carol/);
    const alice = new Client(first.url, ALICE);
    const bob = new Client(first.url, BOB);
    const resting = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const taker = await bob.place({ side: 'buy', price: 1000, qty: 4 });
    const ws = await WsClient.connect(wsUrl(first.url), { 'x-api-key': BOB });
    expect(await ws.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true });
    const exit = await within(first.kill('SIGTERM'), 20_000, 'the server to exit on SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(first.stderr).toMatch(/SIGTERM: shutting down/);
    await ws.close();
    expect(ws.closeInfo?.code).toBe(1001);

    const second = await ServerProcess.spawn(env(dataDir));
    try {
      expect(await new Client(second.url, ALICE).order(resting.order.orderId)).toMatchObject({ status: 'partially_filled', filledQty: 4, remainingQty: 6 });
      expect(await new Client(second.url, BOB).order(taker.order.orderId)).toMatchObject({ status: 'filled', filledQty: 4 });
      expect(await book(second.url)).toMatchObject({ bids: [], asks: [[1000, 6]] });
      expect((await new Client(second.url, BOB).place({ side: 'buy', price: 999, qty: 1 })).order.orderId).toBe(taker.order.orderId + 1);
    } finally {
      // SIGINT is a graceful shutdown too.
      const exit2 = await within(second.kill('SIGINT'), 20_000, 'the restarted server to exit on SIGINT');
      expect(exit2).toEqual({ code: 0, signal: null });
      expect(second.stderr).toMatch(/SIGINT: shutting down/);
    }
  });
});
