// WebSocket subscriptions, beyond ws.test.ts: a slow consumer loses its market data subscriptions
// but not its own order updates; a book subscription with a depth keeps the client's top levels
// right (a level that enters the top is sent, one that leaves it is sent with qty 0).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ALICE, BOB, book, Client, removeTmpDirs, request, start, SYM, until, WsClient, wsUrl, type TestServer, type WsMsg } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function connect(server: { url: string }, query = ''): Promise<WsClient> {
  const c = await WsClient.connect(wsUrl(server.url, query));
  closers.push(() => c.close());
  return c;
}

describe('WebSocket: a slow consumer', () => {
  it('keeps receiving its own order updates when it loses its market data subscriptions (SLOW_CONSUMER)', async () => {
    const server: TestServer = await start({ bodyLimit: 4 << 20 });
    closers.push(() => server.close());
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    const resting = await alice.place({ side: 'sell', price: 1000, qty: 5 });

    const ws = await connect(server, `?apiKey=${ALICE}`);
    expect(await ws.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true });
    expect(await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM })).toMatchObject({ ok: true });
    await ws.next((m) => m.type === 'book.snapshot');

    // Alice stops reading; the server queues ~40 MiB of pongs for her (each echoes a 4 MB id).
    const socket = (ws.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    const big = 'x'.repeat((4 << 20) - 100);
    for (let i = 0; i < 10; i++) ws.send({ op: 'ping', id: `${i}${big}` });
    // Wait until the server has taken all ten frames (the metrics count the messages received).
    await until(async () => {
      const r = await request(server.url, 'GET', '/metrics');
      const m = /gx3_ws_messages_total\{direction="in"\} (\d+)/.exec(r.text);
      return m !== null && Number(m[1]) >= 12;
    }, 'the server to receive the pings');

    // Bob fills Alice's resting order: her own order changes.
    const fill = await bob.place({ side: 'buy', type: 'market', qty: 5 });
    expect(fill.events.some((e) => e.type === 'trade')).toBe(true);

    socket.resume();
    await until(() => ws.received.filter((m) => typeof m.id === 'string' && m.pong === true).length >= 10, 'the pongs');
    expect(await ws.call({ op: 'ping' })).toMatchObject({ pong: true });
    // The market data subscription was dropped, as documented...
    expect(ws.all((m) => m.error?.code === 'SLOW_CONSUMER').length).toBe(1);
    // ...but the orders subscription is not market data: the fill of her order must reach her.
    const updates = ws.all((m: WsMsg) => m.type === 'orders').flatMap((m) => m.orders ?? []);
    expect(updates.filter((o) => o.orderId === resting.order.orderId).map((o) => o.status)).toEqual(['filled']);
  }, 60_000);
});

describe('WebSocket: a book subscription with a depth', () => {
  it('keeps the client\'s top levels equal to the book\'s: a level entering the top is sent, one leaving it is sent with qty 0', async () => {
    const server: TestServer = await start();
    closers.push(() => server.close());
    const alice = new Client(server.url, ALICE);
    const best = await alice.place({ side: 'buy', price: 1000, qty: 1 });
    await alice.place({ side: 'buy', price: 999, qty: 2 });
    await alice.place({ side: 'sell', price: 1010, qty: 3 });
    const ws = await connect(server);
    expect(await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 1 })).toMatchObject({ ok: true });
    const snapshot = await ws.next((m) => m.type === 'book.snapshot');
    expect(snapshot.bids).toEqual([[1000, 1]]);
    const bids = new Map(snapshot.bids ?? []);
    const asks = new Map(snapshot.asks ?? []);
    let seq = snapshot.seq ?? 0;
    const apply = (u: WsMsg): void => {
      expect(u.seq).toBe(seq + 1);
      seq = u.seq ?? 0;
      for (const [side, levels] of [
        [bids, u.bids],
        [asks, u.asks],
      ] as const) {
        for (const [p, q] of levels ?? []) {
          if (q === 0) side.delete(p);
          else side.set(p, q);
        }
      }
    };
    const top = (m: Map<number, number>, desc: boolean): [number, number][] => [...m.entries()].sort((a, b) => (desc ? b[0] - a[0] : a[0] - b[0]));
    const steps: (() => Promise<unknown>)[] = [
      () => alice.cancel(best.order.orderId), // the best bid goes: the next one enters the top
      () => alice.place({ side: 'buy', price: 1001, qty: 4 }), // a better bid pushes 999 out of the top
      () => alice.place({ side: 'buy', price: 998, qty: 1 }), // below the top: an update without levels
      () => new Client(server.url, BOB).place({ side: 'sell', type: 'market', qty: 4 }), // fills 1001: 999 is back on top
    ];
    for (const step of steps) {
      await step();
      apply(await ws.next((m) => m.type === 'book.update'));
      const rest = await book(server.url, 1);
      expect({ bids: top(bids, true), asks: top(asks, false) }).toEqual({ bids: rest.bids, asks: rest.asks });
    }
  });
});
