// Edges of this session's changes, from a review of its diff: a shutdown with pipelined requests
// whose answers are made out of order, the amendment overflow check on its second command, a failed
// start closing the outbox files its feeds opened, and WebSocket frames holding a number JSON would round.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { FileIO } from '@gx3/wal';
import { nodeFileIO } from '@gx3/wal';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { InstrumentConfig } from '../src/config.js';
import { resolveConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/server.js';
import { ALICE, API_KEYS, BOB, flipByte, gatedIO, parseResponses, removeTmpDirs, SEGMENT, silentLogger, sleep, tmpDir, until, within, WsClient, wsUrl } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

const MAX = Number.MAX_SAFE_INTEGER;


async function serve(instruments: InstrumentConfig[], io: FileIO, dataDir = tmpDir()): Promise<RunningServer> {
  const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir, apiKeys: API_KEYS, instruments });
  const s = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io } });
  closers.push(() => s.close());
  return s;
}

function postText(key: string, body: Record<string, unknown>): string {
  const json = JSON.stringify(body);
  return `POST /v1/orders HTTP/1.1\r\nHost: x\r\nx-api-key: ${key}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`;
}


describe('shutdown with HTTP/1.1 pipelining (http.ts onSend: the last answer by time, not by position, says connection: close)', () => {
  it('answers a pipelined order that became durable before the one ahead of it: both answered, the last one on the wire closing', async () => {
    const A: InstrumentConfig = { symbol: 'SLOW', minPrice: 1, maxPrice: 10_000, maxQty: 1000 };
    const B: InstrumentConfig = { symbol: 'FAST', minPrice: 1, maxPrice: 10_000, maxQty: 1000 };
    const gate = gatedIO('SLOW');
    const s = await serve([A, B], gate.io);
    const slow = s.engine.actor('SLOW');
    const fast = s.engine.actor('FAST');
    if (slow === undefined || fast === undefined) throw new Error('no actors');

    gate.gate.holdCmd = true; // SLOW's command log syncs wait: its order is taken, not durable
    const socket = net.connect(s.port, '127.0.0.1');
    let received = '';
    let ended = false;
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('close', () => (ended = true));
    socket.on('error', () => undefined);
    closers.push(() => {
      socket.destroy();
      return Promise.resolve();
    });
    await new Promise<void>((resolve) => {
      socket.once('connect', () => {
        resolve();
      });
    });
    // Two orders pipelined on one keep-alive connection: SLOW's first, FAST's behind it.
    socket.write(
      postText(ALICE, { symbol: 'SLOW', side: 'buy', type: 'limit', price: 10, qty: 1 }) + postText(ALICE, { symbol: 'FAST', side: 'buy', type: 'limit', price: 10, qty: 1 }),
    );
    await until(() => slow.processedSeq >= 1 && gate.held() > 0 && fast.durableSeq >= 1, 'SLOW taken (held), FAST durable');
    // FAST's answer is made (it waits on the wire behind SLOW's, as HTTP/1.1 wants).
    await until(() => s.gateway.view('FAST', 1) !== undefined, 'FAST applied by the gateway');
    await sleep(100);
    expect(received, 'nothing can be on the wire before the first answer').toBe('');

    const closing = s.close();
    gate.gate.holdCmd = false;
    gate.release();
    await within(closing, 15_000, 'the shutdown');
    await until(() => ended, 'the connection closed');

    // Both orders were carried out...
    expect([slow.durableSeq, fast.durableSeq]).toEqual([1, 1]);
    // ...so both must be answered, in order, before the connection is closed. FAST's answer (last on
    // the wire) was made before the shutdown began, so it cannot say `connection: close`: the server
    // closes the connection once both are sent (README).
    const rs = parseResponses(received);
    expect(rs.map((r) => r.status)).toEqual([200, 200]);
    expect(rs.map((r) => JSON.parse(r.body) as { order: { symbol: string } }).map((b) => b.order.symbol)).toEqual(['SLOW', 'FAST']);
  }, 30_000);
});

describe('amend overflow check (gateway.ts amendNow)', () => {
  it('refuses a quantity-alone amendment that takes filled + open past 2^53 - 1 when a fill was not durable yet at the check (the second command is sent unchecked)', async () => {
    const BIG: InstrumentConfig = { symbol: 'BIG', minPrice: 1, maxPrice: 1000, maxQty: MAX };
    const gate = gatedIO('BIG');
    const s = await serve([BIG], gate.io);
    const actor = s.engine.actor('BIG');
    if (actor === undefined) throw new Error('no actor');
    const call = async (method: string, urlPath: string, key: string, body: unknown): Promise<{ status: number; text: string }> => {
      const r = await fetch(s.url + urlPath, { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, text: await r.text() };
    };
    const sell = await call('POST', '/v1/orders', ALICE, { symbol: 'BIG', side: 'sell', type: 'limit', price: 100, qty: MAX });
    expect(sell.status, sell.text).toBe(200);
    const orderId = 1;

    gate.gate.holdCmd = true;
    // Bob takes 2 lots: processed, not durable (the gateway's view still says filledQty 0).
    const fill = call('POST', '/v1/orders', BOB, { symbol: 'BIG', side: 'buy', type: 'limit', price: 100, qty: 2 });
    await until(() => actor.processedSeq >= 2, 'the fill processed');
    expect(s.gateway.view('BIG', orderId)?.filledQty).toBe(0);
    // Alice asks for MAX - 1 open lots: with the 2 filled, the order would hold 2^53 lots.
    const patch = call('PATCH', `/v1/orders/BIG/${orderId}`, ALICE, { qty: MAX - 1 });
    await until(() => actor.processedSeq >= 3, 'the first command of the amendment processed');
    gate.gate.holdCmd = false;
    gate.release();
    expect((await fill).status).toBe(200);
    const r = await patch;

    const o = actor.book.getOrder(orderId);
    const filled = s.gateway.view('BIG', orderId)?.filledQty ?? 0;
    const total = filled + (o?.qty ?? 0);
    // README: "an amendment whose quantity would take the order's filled and open quantity together
    // past 2^53 - 1 lots" is 400 VALIDATION.
    expect({ status: r.status, filledPlusOpenSafe: Number.isSafeInteger(total) && total <= MAX }, r.text.slice(0, 300)).toEqual({ status: 400, filledPlusOpenSafe: true });
  }, 30_000);
});

describe('start failure cleanup (server.ts compose)', () => {
  it('a start that fails in the gateway (a damaged outbox record) closes every outbox file the feeds opened', async () => {
    const dir = tmpDir();
    const instruments: InstrumentConfig[] = [
      { symbol: 'ONE', minPrice: 1, maxPrice: 10_000, maxQty: 1000 },
      { symbol: 'TWO', minPrice: 1, maxPrice: 10_000, maxQty: 1000 },
    ];
    {
      const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: dir, apiKeys: API_KEYS, instruments });
      const s = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT } });
      for (const symbol of ['ONE', 'TWO']) {
        for (let i = 0; i < 10; i++) {
          const r = await fetch(`${s.url}/v1/orders`, {
            method: 'POST',
            headers: { 'x-api-key': ALICE, 'content-type': 'application/json' },
            body: JSON.stringify({ symbol, side: 'buy', type: 'limit', price: 10 + i, qty: 1 }),
          });
          expect(r.status).toBe(200);
        }
      }
      await s.close();
    }
    // One byte of TWO's first event record (the tail the engine's recovery reads is intact): the
    // gateway's feed of TWO cannot read its history.
    const ev = path.join(dir, 'TWO', 'ev');
    const segment = path.join(ev, fs.readdirSync(ev).filter((f) => f.endsWith('.wal')).sort()[0] as string);
    flipByte(segment, 40);

    // The file layer the engine and the gateway's feeds share, counting what is left open.
    const open = new Map<number, string>();
    const io: FileIO = {
      ...nodeFileIO,
      open: (p, flags) => {
        const f = nodeFileIO.open(p, flags);
        open.set(f, p);
        return f;
      },
      close: (f) => {
        open.delete(f);
        nodeFileIO.close(f);
      },
    };
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: dir, apiKeys: API_KEYS, instruments });
    let started: RunningServer | undefined;
    let failure: unknown;
    try {
      started = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io } });
    } catch (err) {
      failure = err;
    }
    if (started !== undefined) await started.close();
    const left = [...open.values()].map((p) => path.relative(dir, p));
    for (const f of open.keys()) nodeFileIO.close(f);
    expect(failure, 'the start failed (the feed of TWO)').toBeDefined();
    // "a start that fails after the engine opened closes what it opened"
    expect(left, 'files left open by the failed start').toEqual([]);
  }, 30_000);
});

describe('fractional numbers over WebSocket (ws.ts onMessage)', () => {
  it('an order frame holding an array answers per order for a fraction JSON keeps (1.5); one holding a number JSON would round (1.0000000000000001) is refused whole, naming order.qty, nothing in it taken', async () => {
    const INST: InstrumentConfig = { symbol: 'FRAC', minPrice: 1, maxPrice: 10_000, maxQty: 1000 };
    const s = await serve([INST], nodeFileIO);
    const c = await WsClient.connect(wsUrl(s.url), { 'x-api-key': ALICE });
    closers.push(() => c.close());
    const good = (price: number): string => `{"symbol":"FRAC","side":"buy","type":"limit","price":${price},"qty":1}`;
    // A fraction JSON.parse keeps (1.5): that order alone is refused, in its slot of `results`.
    c.send(`{"op":"order","id":"plain","order":[${good(10)},{"symbol":"FRAC","side":"buy","type":"limit","price":11,"qty":1.5}]}`);
    const plain = await c.next((m) => m.id === 'plain', 'the answer with qty 1.5');
    expect(Array.isArray(plain.results), JSON.stringify(plain)).toBe(true);
    // A number JSON.parse would read as another (1.0000000000000001 as 1): which order of the array
    // holds it cannot be told from the parsed frame, so the frame is refused whole (README).
    c.send(`{"op":"order","id":"rounded","order":[${good(12)},{"symbol":"FRAC","side":"buy","type":"limit","price":13,"qty":1.0000000000000001}]}`);
    const rounded = await c.next((m) => m.id === 'rounded', 'the answer with qty 1.0000000000000001');
    expect(rounded.results).toBeUndefined();
    expect(rounded.error).toMatchObject({ code: 'VALIDATION' });
    expect((rounded.error as { message: string }).message).toMatch(/^order\.qty: 1\.0000000000000001 is not an integer/);
    // Nothing of that frame was taken: the book holds the first frame's good order only.
    expect(s.gateway.book('FRAC', 10).bids).toEqual([[10, 1]]);
  }, 30_000);
});
