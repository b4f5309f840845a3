// The server on a NATS JetStream bus (NATS_URL, default nats://127.0.0.1:4222): the events of the
// orders placed through it reach the symbol's stream (GX3_<SYMBOL>, subject gx3.events.<symbol>),
// each once and in order, exactly the events the answers carried; a core subscription to the
// subject sees them too. The symbol is unique per run and its stream is deleted afterwards.
// Without a server the tests are skipped with a warning, except under CI where that is a failure.
//
// The test reads NATS through a NatsJetStreamBus connection of its own (its `nc` and `jsm` are the
// nats.js client's connection and JetStream manager): @gx3/server does not depend on the nats.js
// packages directly.
import { codecByName, type Event } from '@gx3/codecs';
import { NatsJetStreamBus } from '@gx3/outbox-publisher';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forTaker } from '../src/answer-json.js';
import { ALICE, BOB, Client, natsProblem, removeTmpDirs, request, start, until, type TestServer } from './helpers.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';


const problem = await natsProblem(NATS_URL);
const skip = problem !== undefined;
if (problem !== undefined && !IN_CI) console.warn(`SKIPPED: server NATS tests: NATS JetStream at ${NATS_URL} is unavailable: ${problem} (set NATS_URL to a server with JetStream; under CI this is a failure)`);

// Under CI, a missing server is a failure, reported by this test.
if (problem !== undefined && IN_CI) {
  it('has a NATS JetStream server (required under CI)', () => {
    expect.fail(`NATS JetStream at ${NATS_URL} is required under CI but unavailable: ${problem}`);
  });
}

afterAll(removeTmpDirs);

interface Stored {
  seq: number;
  subject: string;
  msgId: string | undefined;
  event: Event;
}

describe.skipIf(skip)(`the server on NATS JetStream (${NATS_URL})`, () => {
  // A symbol of this run only: its stream starts empty.
  const SYMBOL = `T${Date.now().toString(36).toUpperCase()}${process.pid.toString(36).toUpperCase()}`;
  const STREAM = `GX3_${SYMBOL}`;
  const SUBJECT = `gx3.events.${SYMBOL}`;
  let reader: NatsJetStreamBus;

  beforeAll(async () => {
    reader = await NatsJetStreamBus.connect({ servers: NATS_URL });
  });

  afterAll(async () => {
    if ((reader as NatsJetStreamBus | undefined) === undefined) return;
    await reader.jsm.streams.delete(STREAM).catch(() => undefined);
    await reader.close();
  });

  async function readStream(count: number): Promise<Stored[]> {
    const consumer = await reader.jsm.jetstream().consumers.get(STREAM);
    const messages = await consumer.consume({ max_messages: 256 });
    const codec = codecByName('binary');
    const out: Stored[] = [];
    try {
      for await (const m of messages) {
        out.push({ seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), event: codec.decode(m.data) as Event });
        if (out.length >= count) break;
      }
    } finally {
      messages.stop();
    }
    return out;
  }

  it('delivers the events of every order placed through the server to the stream, once and in order', async () => {
    const live: Event[] = [];
    const codec = codecByName('binary');
    const sub = reader.nc.subscribe(SUBJECT, {
      callback: (err, msg) => {
        if (err === null) live.push(codec.decode(msg.data) as Event);
      },
    });
    let server: TestServer | undefined = await start({ bus: NATS_URL, instruments: [{ symbol: SYMBOL, minPrice: 1, maxPrice: 100_000, maxQty: 1_000_000 }] });
    const answered: Event[] = [];
    try {
      const alice = new Client(server.url, ALICE);
      const bob = new Client(server.url, BOB);
      const keep = (events: Event[]): void => {
        answered.push(...events);
      };
      const maker = await alice.place({ symbol: SYMBOL, side: 'sell', price: 500, qty: 10 });
      keep(maker.events);
      keep((await bob.place({ symbol: SYMBOL, side: 'buy', price: 500, qty: 4 })).events);
      const r = await alice.amend(maker.order.orderId, { qty: 3 }, SYMBOL);
      keep(r.body.events ?? []);
      keep((await bob.place({ symbol: SYMBOL, side: 'buy', type: 'market', qty: 1 })).events);
      keep((await bob.place({ symbol: SYMBOL, side: 'buy', price: 400, qty: 2, tif: 'FOK' })).events);
      keep((await alice.cancel(maker.order.orderId, SYMBOL)).body.events ?? []);
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? alice : bob).place({ symbol: SYMBOL, side: 'buy', price: 100 + i, qty: 1 })));
      for (const m of many) keep(m.events);
      answered.sort((a, b) => a.eventSeq - b.eventSeq);
      expect(answered.map((e) => e.eventSeq)).toEqual(answered.map((_, i) => i + 1));

      // The publisher delivers in the background: wait until the stream holds them all.
      await until(async () => (await reader.jsm.streams.info(STREAM).catch(() => undefined))?.state.messages === answered.length, `${answered.length} messages in ${STREAM}`);
      await server.close();
      server = undefined;

      const stored = await readStream(answered.length);
      // The bus carries whole events; an answer shows a trade as its taker may see it.
      const asAnswered = (e: Event): unknown => (e.type === 'trade' ? forTaker(e) : e);
      expect(stored.map((s) => asAnswered(s.event))).toEqual(answered);
      expect(stored.map((s) => s.seq)).toEqual(answered.map((_, i) => i + 1));
      expect(stored.every((s) => s.subject === SUBJECT)).toBe(true);
      expect(stored.map((s) => s.msgId)).toEqual(answered.map((e) => `${SYMBOL}:${e.eventSeq}`));
      expect((await reader.jsm.streams.info(STREAM)).state.messages).toBe(answered.length);

      // A plain subscription to the subject saw the same events as they were published.
      await until(() => live.length >= answered.length, `${answered.length} messages on ${SUBJECT}`);
      expect(live.map(asAnswered)).toEqual(answered);
    } finally {
      sub.unsubscribe();
      await server?.close();
    }
  });

  it("a server on a fresh data directory does not publish into a stream of another history: its orders are taken, /health and /metrics show HISTORY_MISMATCH, the stream keeps the first history's events only", async () => {
    const symbol = `${SYMBOL}H`;
    const stream = `GX3_${symbol}`;
    const instruments = [{ symbol, minPrice: 1, maxPrice: 100_000, maxQty: 1_000_000 }];
    try {
      const first = await start({ bus: NATS_URL, instruments });
      try {
        await new Client(first.url, ALICE).place({ symbol, side: 'sell', price: 500, qty: 10 });
        await until(async () => (await reader.jsm.streams.info(stream).catch(() => undefined))?.state.messages === 2, `2 messages in ${stream}`);
      } finally {
        await first.close();
      }
      // The data directory is replaced by an empty one: the new history's event ids start from 1 again.
      const second = await start({ bus: NATS_URL, instruments });
      try {
        const placed = await new Client(second.url, BOB).place({ symbol, side: 'buy', price: 400, qty: 3 });
        expect(placed.order).toMatchObject({ orderId: 1, status: 'open' });
        const health = async (): Promise<Record<string, unknown>> => (await request(second.url, 'GET', '/health')).body as unknown as Record<string, unknown>;
        await until(async () => JSON.stringify(await health()).includes('HISTORY_MISMATCH'), 'the publisher reports HISTORY_MISMATCH in /health');
        const h = await health();
        expect(h).toMatchObject({ status: 'ok', ready: true });
        const pub = (h.symbols as Record<string, { publisher: { consecutiveFailures: number; lastEventSeq: number; lagBytes: number; lastError: { code: string; message: string } } }>)[symbol]?.publisher;
        expect(pub?.lastError.code).toBe('HISTORY_MISMATCH');
        expect(pub?.consecutiveFailures).toBeGreaterThan(0);
        expect(pub?.lastEventSeq).toBe(0);
        expect(pub?.lagBytes).toBeGreaterThan(0);
        const metrics = (await request(second.url, 'GET', '/metrics')).text;
        expect(metrics).toMatch(new RegExp(`gx3_publisher_consecutive_failures\\{symbol="${symbol}"\\} [1-9]`));
        // Nothing of the second history reached the stream, and nothing was dropped as a duplicate.
        const info = await reader.jsm.streams.info(stream);
        expect(info.state.messages).toBe(2);
        const last = await reader.jsm.streams.getMessage(stream, { seq: 2 });
        expect(codecByName('binary').decode(last?.data ?? new Uint8Array())).toMatchObject({ type: 'added', side: 'sell', price: 500, qty: 10 });
      } finally {
        await second.close();
      }
    } finally {
      await reader.jsm.streams.delete(stream).catch(() => undefined);
    }
  });
});
