// The gateway where requests race the engine's durability (a PATCH behind another PATCH not yet
// durable; answers of orders that ended in the same durable batch as many others) and hostile
// upgrade requests. No timing assertions: waits are bounded polls (`until`).
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.js';
import { startServer } from '../src/server.js';
import {
  ALICE,
  API_KEYS,
  book,
  checkBuilt,
  Client,
  gatedIO,
  removeTmpDirs,
  request,
  SEGMENT,
  ServerProcess,
  serverEnv,
  silentLogger,
  start,
  SYM,
  TEST_INSTRUMENT,
  tmpDir,
  until,
  WsClient,
  wsUrl,
} from './helpers.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});
afterAll(async () => {
  await ServerProcess.killAll();
  removeTmpDirs();
});

/** A file layer whose asynchronous fsyncs can be held back (commands stay processed, not durable) until released. */

describe('PATCH semantics', () => {
  it('a PATCH of the quantity alone, sent while a PATCH of the price is not durable yet, keeps the new price', async () => {
    const g = gatedIO();
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
    const server = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: g.io } });
    closers.push(async () => {
      g.gate.holdAll = false;
      g.release();
      await server.close();
    });
    const actor = server.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    const alice = new Client(server.url, ALICE);
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });

    g.gate.holdAll = true;
    const before = actor.processedSeq;
    const move = alice.amend(a.order.orderId, { price: 1005 });
    await until(() => actor.processedSeq >= before + 1, 'the price change to be processed');
    // The gateway's view still says 1000 (the move is not durable): the price left out must be the
    // one the engine holds when it applies the amendment (README: "What is left out is resolved by
    // the engine when it applies the amendment, not from the gateway's view").
    const shrink = alice.amend(a.order.orderId, { qty: 5 });
    // Taken: processed, or waiting for the price change (one amendment of an order at a time).
    await until(() => actor.processedSeq >= before + 2 || server.gateway.amendmentsInFlight >= 2, 'the quantity change to be taken');
    g.gate.holdAll = false;
    g.release();
    expect((await move).status).toBe(200);
    const r = await shrink;
    expect(r.status).toBe(200);
    expect(r.body.order).toMatchObject({ price: 1005, remainingQty: 5 });
    // A smaller quantity at the same price is a reduction (keeps priority), not a cancel-replace.
    expect(r.body.events?.find((e) => e.type === 'amended')).toMatchObject({ price: 1005, qty: 5, kind: 'REDUCE' });
    expect((await book(server.url)).asks).toEqual([[1005, 5]]);
  }, 30_000);
});

describe('bad input', () => {
  it('a WebSocket upgrade request whose target does not parse as a URL (GET //) gets 400 and the server goes on serving', async () => {
    checkBuilt();
    const p = await ServerProcess.spawn(serverEnv(tmpDir()));
    closers.push(async () => {
      await p.kill('SIGKILL');
    });
    const u = new URL(p.url);
    // One unauthenticated request, no API key needed.
    await new Promise<void>((resolve) => {
      const s = net.connect(Number(u.port), u.hostname, () => {
        s.write(
          'GET // HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
      });
      s.on('data', () => s.destroy());
      s.on('close', () => {
        resolve();
      });
      s.on('error', () => {
        resolve();
      });
    });
    // The server must answer the bad request (404 or 400) and go on serving.
    const live = async (): Promise<number | string> => {
      try {
        return (await fetch(`${p.url}/health/live`)).status;
      } catch (err) {
        return `${String(err)}; stderr: ${p.stderr.slice(-400)}`;
      }
    };
    expect(await live()).toBe(200);
    expect(p.proc.exitCode).toBeNull();
  }, 30_000);
});

describe('answers', () => {
  it('an order answered after more than orderHistory orders ended in the same durable batch still has its order in its answer', async () => {
    const server = await start({ orderHistory: 2 });
    closers.push(() => server.close());
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
    closers.push(() => ws.close());
    // Four IOC orders that find nothing to match: each ends at once (canceled); one frame, so one batch.
    const orders = [0, 1, 2, 3].map((i) => ({ symbol: SYM, side: 'buy', type: 'limit', price: 1000 + i, qty: 1, tif: 'IOC' }));
    const r = await ws.call({ op: 'order', order: orders });
    const results = r.results ?? [];
    expect(results.map((x) => x.ok)).toEqual([true, true, true, true]);
    // README: an order's answer is `{order, events}`; the first two lost theirs to the history ring.
    expect(results.map((x) => x.order?.status)).toEqual(['canceled', 'canceled', 'canceled', 'canceled']);
    // The history is still bounded: once more events are applied, only the last two ended orders are kept.
    const ids = results.map((x) => x.order?.orderId as number);
    await new Client(server.url, ALICE).place({ side: 'buy', price: 900, qty: 1 });
    const status = async (id: number): Promise<number> => (await request(server.url, 'GET', `/v1/orders/${SYM}/${id}`, { key: ALICE })).status;
    expect(await Promise.all(ids.map(status))).toEqual([404, 404, 200, 200]);
  }, 30_000);
});
