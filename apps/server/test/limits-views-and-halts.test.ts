// Edges of the per-order amendment chain (a halt while it waits for room), the rate limits with a
// burst of 1 and a negative depth, and a book view whose other subscriber was closing (each failed
// on the code before its fix).
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { nodeFileIO } from '@gx3/wal';
import { KeyStore } from '../src/auth.js';
import { resolveConfig } from '../src/config.js';
import { ApiError } from '../src/errors.js';
import { startServer, type RunningServer } from '../src/server.js';
import { ALICE, API_KEYS, Client, gatedIO, pathAwareIO, removeTmpDirs, request, SEGMENT, silentLogger, sleep, start, SYM, TEST_INSTRUMENT, tmpDir, until, WsClient, wsUrl, type WsMsg, metricSample } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});


async function metric(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricSample((await request(base, 'GET', '/metrics')).text, name, labels) ?? 0;
}

// ---------------------------------------------------------------------------------------------
// A minimal WebSocket client over a raw socket: it never answers the server's closing handshake,
// so that the server keeps the connection CLOSING for as long as the test wants.

class RawWs {
  readonly texts: Record<string, unknown>[] = [];
  closeFrame = false;
  private buf = Buffer.alloc(0);
  private upgraded = false;
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.parse();
    });
    socket.on('error', () => undefined);
  }

  static connect(base: string): Promise<RawWs> {
    const u = new URL(base);
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: u.hostname, port: Number(u.port) }, () => {
        socket.write(
          `GET /v1/ws HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        );
      });
      const r = new RawWs(socket);
      socket.once('error', reject);
      void until(() => r.upgraded, 'the raw upgrade').then(() => {
        resolve(r);
      }, reject);
    });
  }

  private parse(): void {
    if (!this.upgraded) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!this.buf.subarray(0, end).toString('latin1').startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${this.buf.toString('latin1')}`);
      this.upgraded = true;
      this.buf = this.buf.subarray(end + 4);
    }
    for (;;) {
      if (this.buf.length < 2) return;
      const op = (this.buf[0] as number) & 0x0f;
      let len = (this.buf[1] as number) & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        at = 10;
      }
      if (this.buf.length < at + len) return;
      const payload = this.buf.subarray(at, at + len);
      this.buf = this.buf.subarray(at + len);
      if (op === 1) this.texts.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>);
      else if (op === 8) this.closeFrame = true;
    }
  }

  send(frame: unknown): void {
    const payload = Buffer.from(JSON.stringify(frame), 'utf8');
    const mask = Buffer.from([1, 2, 3, 4]);
    const head = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i & 3] as number)));
    this.socket.write(Buffer.concat([head, mask, masked]));
  }
}

/** A client's book built from its snapshot and updates. */
function follow(ws: WsClient, _depth: number): { asks: () => [number, number][]; bids: () => [number, number][]; seq: () => number } {
  const all = (): WsMsg[] => ws.received.filter((m) => m.symbol === SYM && (m.type === 'book.snapshot' || m.type === 'book.update'));
  const build = (): { bids: Map<number, number>; asks: Map<number, number>; seq: number } => {
    const msgs = all();
    let start = -1;
    for (let i = 0; i < msgs.length; i++) if (msgs[i]?.type === 'book.snapshot') start = i;
    const bids = new Map<number, number>();
    const asks = new Map<number, number>();
    let seq = 0;
    for (const m of msgs.slice(Math.max(0, start))) {
      if (m.type === 'book.snapshot') {
        bids.clear();
        asks.clear();
      }
      for (const [p, q] of m.bids ?? []) {
        if (q === 0) bids.delete(p);
        else bids.set(p, q);
      }
      for (const [p, q] of m.asks ?? []) {
        if (q === 0) asks.delete(p);
        else asks.set(p, q);
      }
      seq = m.seq ?? seq;
    }
    return { bids, asks, seq };
  };
  return {
    asks: () => [...build().asks].sort((a, b) => a[0] - b[0]),
    bids: () => [...build().bids].sort((a, b) => b[0] - a[0]),
    seq: () => build().seq,
  };
}

// ---------------------------------------------------------------------------------------------

describe('an amendment waiting for a full mailbox', () => {
  it('an amendment whose second command waits for a full mailbox when the symbol halts is refused HALTED (an ApiError, 503), counted as refused, not an INTERNAL error', async () => {
    const fail = { cmdWrites: false };
    const io = pathAwareIO((pathOf) => ({
      write: (fd, buf, offset, length, position) => {
        if (fail.cmdWrites && pathOf(fd).includes('/cmd/')) throw Object.assign(new Error('EIO: i/o error, write (injected by the test)'), { code: 'EIO' });
        return nodeFileIO.write(fd, buf, offset, length, position);
      },
    }));
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir('gx3-review-latest-'), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
    const server: RunningServer = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io, mailboxSize: 1 } });
    closers.push(() => server.close());
    const actor = server.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    const alice = new KeyStore(API_KEYS).authenticate(ALICE);
    const placed = await new Client(server.url, ALICE).place({ side: 'buy', price: 500, qty: 5 });
    const refusedBefore = await metric(server.url, 'gx3_commands_total', { kind: 'amend', outcome: 'refused' });

    // The amendment of the quantity alone (a size increase) takes two commands: the first, a
    // reduction the book refuses, is taken at once. When it is durable (a listener hears of it
    // before the gateway's continuation runs), the one-slot mailbox is filled (a cancel of an
    // unknown order) and the command log's next write fails: the second command waits for the
    // mailbox, and the actor halts while it waits.
    let armed = true;
    actor.onDurable(() => {
      if (!armed) return;
      armed = false;
      fail.cmdWrites = true;
      const filler = actor.trySubmit({ symbol: SYM, seq: 0, reqId: 0, orderId: 999_999, userId: alice.id, ts: 0, type: 'cancel' });
      expect(typeof filler).toBe('number');
    });
    const p = server.gateway.amend(alice, SYM, placed.order.orderId, { qty: 10, price: undefined });
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(armed).toBe(false);
    expect(actor.halted).toBeDefined();
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('HALTED');
    expect((err as ApiError).status).toBe(503);
    expect(await metric(server.url, 'gx3_commands_total', { kind: 'amend', outcome: 'refused' })).toBe(refusedBefore + 1);
    expect(server.gateway.amendmentsInFlight).toBe(0);
  }, 30_000);

  it('the second command waits for room that comes only as applied commands become durable (the mailbox empty), and is carried out then', async () => {
    const g = gatedIO(SYM);
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir('gx3-review-latest-'), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
    const server: RunningServer = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: g.io, mailboxSize: 1, maxPending: 1 } });
    closers.push(() => server.close());
    const actor = server.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    const alice = new KeyStore(API_KEYS).authenticate(ALICE);
    const placed = await new Client(server.url, ALICE).place({ side: 'buy', price: 500, qty: 5 });

    // When the amendment's first command (a reduction the book refuses) is durable, the command
    // log's syncs are held and a filler (a cancel of an unknown order) takes the one place: once
    // it is applied the mailbox is empty, but the filler is not durable, so the bound is reached.
    let fillerSeq = 0;
    actor.onDurable(() => {
      if (fillerSeq !== 0) return;
      g.gate.holdCmd = true;
      const r = actor.trySubmit({ symbol: SYM, seq: 0, reqId: 0, orderId: 999_999, userId: alice.id, ts: 0, type: 'cancel' });
      if (typeof r !== 'number') throw new Error(`filler refused: ${r.code}`);
      fillerSeq = r;
    });
    let settled = false;
    const p = server.gateway.amend(alice, SYM, placed.order.orderId, { qty: 10, price: undefined }).finally(() => {
      settled = true;
    });
    await until(() => fillerSeq !== 0 && actor.processedSeq >= fillerSeq && g.held() > 0, 'the filler applied, its sync held');
    expect(actor.queued).toBe(0);
    expect(settled).toBe(false);
    g.gate.holdCmd = false;
    g.release();
    const result = await p;
    expect(result.order?.qty).toBe(10);
    expect(result.order?.remainingQty).toBe(10);
    expect(server.gateway.amendmentsInFlight).toBe(0);
  }, 30_000);
});

describe('two tokens for an amendment of the quantity alone', () => {
  it('with rateBurst 1, a WebSocket amend of the quantity alone can be carried out (it is not refused for ever as more than the burst)', async () => {
    const server = await start({ rateLimit: 1_000_000, rateBurst: 1 });
    closers.push(() => server.close());
    const ws = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
    closers.push(() => ws.close());
    const placed = await ws.call({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'limit', price: 500, qty: 5 } });
    expect(placed.ok).toBe(true);
    const orderId = placed.order?.orderId as number;
    let r: WsMsg | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      r = await ws.call({ op: 'amend', symbol: SYM, orderId, qty: 3 });
      if (r.error?.code !== 'RATE_LIMITED') break;
      await sleep((r.error.retryAfter ?? 1) * 1000);
    }
    expect(r?.error).toBeUndefined();
    expect(r?.order?.remainingQty).toBe(3);
  }, 30_000);

  it('with rateLimit 2 and rateBurst 1, a PATCH of the quantity alone succeeds once Retry-After is honoured', async () => {
    const server = await start({ rateLimit: 2, rateBurst: 1 });
    closers.push(() => server.close());
    const alice = new Client(server.url, ALICE);
    const placed = await alice.place({ side: 'buy', price: 500, qty: 5 });
    let status = 0;
    let text = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const r = await alice.amend(placed.order.orderId, { qty: 3 });
      status = r.status;
      text = r.text;
      if (r.status !== 429) break;
      await sleep(Number(r.headers.get('retry-after') ?? '1') * 1000 + 100);
    }
    expect({ status, text }).toMatchObject({ status: 200 });
  }, 30_000);
});

describe('the per-connection frame limit', () => {
  it('with rateBurst 1, a book subscription at depth 1000 is taken (as one without a depth, which is depth 1000 too)', async () => {
    const server = await start({ rateLimit: 1_000_000, rateBurst: 1 });
    closers.push(() => server.close());
    const ws = await WsClient.connect(wsUrl(server.url));
    closers.push(() => ws.close());
    const implicit = await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM });
    expect(implicit.ok).toBe(true);
    const explicit = await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 1000 });
    expect(explicit.error).toBeUndefined();
    expect(explicit.ok).toBe(true);
  }, 30_000);

  it('a subscribe frame with a negative depth does not refill the connection\'s bucket (it costs at least one token)', async () => {
    // One token a second, a burst of 2: the frames below are sent at once, well within a second.
    const server = await start({ rateLimit: 1, rateBurst: 2 });
    closers.push(() => server.close());
    const ws = await WsClient.connect(wsUrl(server.url));
    closers.push(() => ws.close());
    ws.send({ op: 'ping', id: 'p1' });
    ws.send({ op: 'ping', id: 'p2' });
    ws.send({ op: 'ping', id: 'p3' });
    ws.send({ op: 'subscribe', channel: 'book', symbol: SYM, depth: -1_000_000_000, id: 's' });
    ws.send({ op: 'ping', id: 'p4' });
    ws.send({ op: 'ping', id: 'p5' });
    const answers: Record<string, string> = {};
    for (const id of ['p1', 'p2', 'p3', 's', 'p4', 'p5']) {
      const m = await ws.next((x) => x.id === id, `the answer to ${id}`);
      answers[id] = m.pong === true ? 'pong' : (m.error?.code ?? 'ok');
    }
    expect(answers).toEqual({ p1: 'pong', p2: 'pong', p3: 'RATE_LIMITED', s: 'RATE_LIMITED', p4: 'RATE_LIMITED', p5: 'RATE_LIMITED' });
  }, 30_000);
});

describe('book views counted per depth', () => {
  it('a subscriber of a depth whose other subscriber was closing keeps a correct book (a level gone is sent with qty 0)', async () => {
    const server = await start();
    closers.push(() => server.close());
    const alice = new Client(server.url, ALICE);
    await alice.place({ side: 'sell', price: 200, qty: 5 });

    // An observer at another depth, to know when a book update was broadcast.
    const watcher = await WsClient.connect(wsUrl(server.url));
    closers.push(() => watcher.close());
    await watcher.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 20 });
    const watched = follow(watcher, 20);

    // R subscribes at depth 5, then fails 5 auth frames: the server closes it (1008) and, as R never
    // answers the closing handshake, it stays CLOSING (skipped by the broadcasts).
    const raw = await RawWs.connect(server.url);
    closers.push(() => {
      raw.socket.destroy();
      return Promise.resolve();
    });
    raw.send({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 5, id: 'sub' });
    await until(() => raw.texts.some((t) => t.type === 'book.snapshot'), 'the raw client\'s snapshot');
    for (let i = 0; i < 5; i++) raw.send({ op: 'auth', key: `wrong-key-${i}-xxxx`, id: `a${i}` });
    await until(() => raw.closeFrame, 'the server\'s close frame (1008)');

    // A book change while R is CLOSING.
    const o2 = await alice.place({ side: 'sell', price: 201, qty: 1 });
    const afterPlace = (await request(server.url, 'GET', `/v1/book/${SYM}`)).body.seq as number;
    await until(() => watched.seq() >= afterPlace, 'the watcher\'s update');

    // B subscribes at depth 5.
    const b = await WsClient.connect(wsUrl(server.url));
    closers.push(() => b.close());
    await b.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 5 });
    const bBook = follow(b, 5);
    await until(() => bBook.seq() >= afterPlace, 'B\'s snapshot');
    expect(bBook.asks()).toEqual([
      [200, 5],
      [201, 1],
    ]);

    // R's connection ends at last.
    raw.socket.destroy();
    await until(async () => (await metric(server.url, 'gx3_ws_connections')) === 2, 'R\'s connection to end on the server');

    // The level at 201 goes: B must be told.
    expect((await alice.cancel(o2.order.orderId)).status).toBe(200);
    const rest = (await request(server.url, 'GET', `/v1/book/${SYM}?depth=5`)).body;
    await until(() => bBook.seq() >= (rest.seq as number), 'B\'s update');
    expect(bBook.asks()).toEqual(rest.asks);
  }, 30_000);
});
