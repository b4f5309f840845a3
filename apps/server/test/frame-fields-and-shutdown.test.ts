// WebSocket frames with fields their request does not have (refused, not dropped silently), a book
// depth above the documented maximum, and a shutdown facing a client that never answers the
// closing handshake.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ALICE, book, removeTmpDirs, start, SYM, within, WsClient, wsUrl, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function server(): Promise<TestServer> {
  const s = await start();
  closers.push(() => s.close());
  return s;
}

async function connect(s: { url: string }, query = ''): Promise<WsClient> {
  const c = await WsClient.connect(wsUrl(s.url, query));
  closers.push(() => c.close());
  return c;
}

const limit = (side: 'buy' | 'sell', price: number, qty: number): Record<string, unknown> => ({ symbol: SYM, side, type: 'limit', price, qty });

describe('WebSocket frames with fields the request does not have', () => {
  it('an order frame with a field outside its order (a misplaced stp or clientOrderId) is refused with VALIDATION and places nothing', async () => {
    const s = await server();
    const c = await connect(s, `?apiKey=${ALICE}`);
    // Cancel and amend frames refuse unknown members; an order frame silently drops them, so an stp
    // or a clientOrderId put next to the order instead of inside it is lost without a word.
    const misplacedStp = await c.call({ op: 'order', order: limit('buy', 500, 1), stp: 'CANCEL_NEWEST' });
    expect(misplacedStp).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^stp: /) as unknown } });
    const misplacedId = await c.call({ op: 'order', order: [limit('buy', 501, 1)], clientOrderId: 'once-only' });
    expect(misplacedId).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^clientOrderId: /) as unknown } });
    expect((await book(s.url)).bids).toEqual([]);
  });

  it('a subscribe frame with a misspelt field (dpeth) is refused with VALIDATION, without a subscription', async () => {
    const s = await server();
    const c = await connect(s);
    const typo = await c.call({ op: 'subscribe', channel: 'book', symbol: SYM, dpeth: 5 });
    expect(typo).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^dpeth: /) as unknown } });
    expect(await c.call({ op: 'ping' })).toMatchObject({ pong: true });
    expect(c.all((m) => m.type === 'book.snapshot')).toEqual([]);
  });

  it('a book subscription with a depth above 10,000 is refused with VALIDATION, without a subscription', async () => {
    const s = await server();
    const c = await connect(s);
    // The README documents depth 1..10,000; 50,000 is silently served as 10,000.
    const deep = await c.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 50_000 });
    expect(deep).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^depth: /) as unknown } });
    expect(await c.call({ op: 'ping' })).toMatchObject({ pong: true });
    expect(c.all((m) => m.type === 'book.snapshot')).toEqual([]);
  });
});

describe('shutdown with WebSocket clients', () => {
  it('server.close() does not wait for a WebSocket client that never answers the close handshake (it is dropped after the grace period)', async () => {
    const s = await start();
    const c = await WsClient.connect(wsUrl(s.url));
    expect(await c.call({ op: 'ping' })).toMatchObject({ pong: true });
    // The client stops reading: it never sees the server's close frame, so never answers it.
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const closing = s.close();
    try {
      // A hang guard, not a measurement: HTTP connections are cut after a 2 s grace, but an upgraded
      // socket is not among the connections closeAllConnections() cuts, so close() waits for ws's
      // 30 s close timeout.
      await within(closing, 10_000, 'server.close() with a WebSocket client that does not answer the close frame');
    } finally {
      c.ws.terminate();
      await closing;
    }
  }, 60_000);
});
