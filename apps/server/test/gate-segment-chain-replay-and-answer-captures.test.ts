// Across packages: the NATS bus's per-symbol gate (messages after republished ones wait for them)
// and its option checks; the WAL writer's check of the segment chain on open;
// the engine's replay bounded by the command log's end (JSON codec, rolled logs, torn tails, clean
// close markers); the codecs' encoders reading each field once; and the gateway's answers showing
// an order as its own command left it (the feed's capture at the command's CmdEnd).
//
// The NATS tests run against NATS_URL and are skipped (with a warning) without a server, except
// under CI where that is a failure (as packages/outbox-publisher/test/nats-helpers.ts decides).
import fs from 'node:fs';
import path from 'node:path';
import { binaryCodec, jsonCodec, type Codec, type Command, type Event, type Message } from '@gx3/codecs';
import { Engine, EngineError, type SymbolActor } from '@gx3/engine';
import { NatsJetStreamBus, OutboxError, type BusMessage, type PublishAck } from '@gx3/outbox-publisher';
import { listSegments, nodeFileIO, truncateLog, WalReader, WalRecord, WalWriter } from '@gx3/wal';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bookState, cancel, cmdDirOf, evDirOf, mixedCommands } from '../../../packages/engine/test/helpers.js';
import { trade } from '../../../packages/outbox-publisher/test/helpers.js';
import { deleteStreams, manager, NATS_URL, natsProblem, testStreamOptions, unavailable } from '../../../packages/outbox-publisher/test/nats-helpers.js';
import { ALICE, BOB, Client, faults, removeTmpDirs, start, SYM, tmpDir, until, WsClient, wsUrl, type TestServer, type WsMsg } from './helpers.js';

afterAll(removeTmpDirs);

// ---------------------------------------------------------------------------------------------
// The NATS bus: option checks

describe('NatsJetStreamBus.connect option checks (new: durations and storage)', () => {
  // packages/outbox-publisher/README.md (NatsJetStreamBus): "connect refuses others with
  // INVALID_OPTIONS before connecting, as it does ackTimeoutMs, duplicateWindowMs and
  // connectTimeoutMs that are not whole numbers of milliseconds from 1 to 2^31 - 1, and a storage
  // other than file or memory". The message of each refusal is built with JSON.stringify(value)
  // (nats-bus.ts durationProblem, and the storage check in connect), which throws a TypeError for
  // a BigInt or an object with a cycle: the caller gets a TypeError instead of the typed refusal.
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  it.each([
    ['ackTimeoutMs', 5000n],
    ['duplicateWindowMs', 60_000n],
    ['connectTimeoutMs', 100n],
    ['storage', 1n],
    ['ackTimeoutMs', circular],
  ])('connect() with %s %s is refused with OutboxError INVALID_OPTIONS, not a TypeError from building the message', async (name, value) => {
    const err = await NatsJetStreamBus.connect({ servers: 'nats://127.0.0.1:1', connectTimeoutMs: 200, [name]: value }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OutboxError);
    expect((err as OutboxError).code).toBe('INVALID_OPTIONS');
    expect((err as Error).message).toContain(name);
  });
});

// ---------------------------------------------------------------------------------------------
// The NATS bus: the gate behind republished messages

const nats = unavailable(`NATS JetStream at ${NATS_URL}`, await natsProblem(NATS_URL), 'set NATS_URL to a server with JetStream');
const natsFailure = nats.failure;
if (natsFailure !== undefined) {
  it('has a NATS JetStream server (required under CI)', () => {
    expect.fail(natsFailure);
  });
}

/** The `code` of an error, if it has one. */
function codeOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

interface Answer {
  id: string;
  err: Error | null;
  ack: PublishAck | undefined;
}

describe.skipIf(nats.skip)("the NATS bus's gate: messages after republished ones", () => {
  const HISTORY = 'review-history-1';
  const S = 'GATE';
  let nc: Awaited<ReturnType<typeof manager>>['nc'];
  let jsm: Awaited<ReturnType<typeof manager>>['jsm'];
  const buses: NatsJetStreamBus[] = [];
  const streams: string[] = [];

  beforeAll(async () => {
    ({ nc, jsm } = await manager(NATS_URL));
  });
  afterEach(async () => {
    for (const b of buses.splice(0)) await b.close().catch(() => undefined);
    await deleteStreams(jsm, streams.splice(0));
  });
  afterAll(async () => {
    await nc.close();
  });

  async function connect(options = testStreamOptions('RV')): Promise<NatsJetStreamBus> {
    const bus = await NatsJetStreamBus.connect(options);
    buses.push(bus);
    streams.push(bus.stream(S));
    return bus;
  }

  function message(eventSeq: number, price?: number): BusMessage {
    const e = price === undefined ? trade(S, eventSeq, eventSeq) : { ...trade(S, eventSeq, eventSeq), price };
    return { symbol: S, eventSeq, id: `${S}:${eventSeq}`, previousId: eventSeq === 1 ? undefined : `${S}:${eventSeq - 1}`, payload: binaryCodec.encodeToBuffer(e), event: e, history: HISTORY };
  }

  /** Publishes and collects the answer (and the order of all answers in `log`). */
  function publish(bus: NatsJetStreamBus, eventSeq: number, log: string[], answers: Answer[], then?: (a: Answer) => void): void {
    bus.publish(message(eventSeq), (err, ack) => {
      const a = { id: `${S}:${eventSeq}`, err, ack };
      log.push(`done ${a.id}${err === null ? '' : ` ${codeOf(err) ?? '?'}`}`);
      answers.push(a);
      then?.(a);
    });
  }

  /** Records every message the bus hands to its NATS connection, in `log`. */
  function spySends(bus: NatsJetStreamBus, log: string[]): void {
    const conn = bus.nc as unknown as { publish: (subject: string, payload: Uint8Array, opts?: { headers?: { get(k: string): string } }) => void };
    const original = conn.publish.bind(conn);
    conn.publish = (subject, payload, opts) => {
      log.push(`send ${opts?.headers?.get('Nats-Msg-Id') ?? '?'}`);
      original(subject, payload, opts);
    };
  }

  /** The stream's message ids in stream order. */
  async function storedIds(stream: string): Promise<string[]> {
    const info = await jsm.streams.info(stream);
    const out: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq });
      if (m !== null) out.push(m.header.get('Nats-Msg-Id'));
    }
    return out;
  }

  /** Events 1..n stored through a bus of their own, closed after. */
  async function seed(options: ReturnType<typeof testStreamOptions>, n: number): Promise<void> {
    const bus = await connect(options);
    const answers: Answer[] = [];
    for (let k = 1; k <= n; k++) publish(bus, k, [], answers);
    await until(() => answers.length === n, 'the seeded events acknowledged');
    expect(answers.map((a) => a.err)).toEqual(new Array(n).fill(null));
  }

  const ids = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `${S}:${from + i}`);
  const gatesOf = (bus: NatsJetStreamBus): Map<string, unknown> => (bus as unknown as { gates: Map<string, unknown> }).gates;

  it('ordinary publishing holds nothing back: every new event is handed to the connection within its publish() call, pipelined, and stored once in order', async () => {
    const options = testStreamOptions('RV');
    await seed(options, 5);
    const bus = await connect(options);
    await bus.ensureStream(S, HISTORY);
    const log: string[] = [];
    const answers: Answer[] = [];
    spySends(bus, log);
    for (let k = 6; k <= 205; k++) publish(bus, k, log, answers);
    // All 200 went out synchronously, before any answer (no gate: nothing was republished).
    expect(log).toEqual(ids(6, 205).map((id) => `send ${id}`));
    await until(() => answers.length === 200, 'the 200 answers');
    expect(answers.filter((a) => a.err !== null || a.ack?.duplicate !== false)).toEqual([]);
    expect(await storedIds(bus.stream(S))).toEqual(ids(1, 205));
    expect(gatesOf(bus).size).toBe(0);
  });

  it("held messages go out in order once the republished ones settle; a republish made from a republished message's callback (a rewind) holds them again, and a message published from it joins them in order", async () => {
    const options = testStreamOptions('RV');
    await seed(options, 5);
    const bus = await connect(options);
    await bus.ensureStream(S, HISTORY); // the stream holds 1..5: 4 and 5 are republished
    const log: string[] = [];
    const answers: Answer[] = [];
    spySends(bus, log);
    publish(bus, 4, log, answers);
    publish(bus, 5, log, answers, () => {
      // Re-entrant: a rewind to 3 and a new event 8, from inside the bus's callback.
      publish(bus, 3, log, answers);
      publish(bus, 8, log, answers);
    });
    publish(bus, 6, log, answers);
    publish(bus, 7, log, answers);
    expect(log).toEqual([`send ${S}:4`, `send ${S}:5`]); // 6 and 7 wait
    await until(() => answers.length === 6, 'six answers', 10_000);
    const at = (entry: string): number => log.indexOf(entry);
    // 6, 7, 8 were sent only after 3, 4 and 5 had settled, in order.
    for (const later of ['6', '7', '8']) for (const earlier of ['3', '4', '5']) expect(at(`send ${S}:${later}`)).toBeGreaterThan(at(`done ${S}:${earlier}`));
    expect(at(`send ${S}:6`)).toBeLessThan(at(`send ${S}:7`));
    expect(at(`send ${S}:7`)).toBeLessThan(at(`send ${S}:8`));
    const byId = new Map(answers.map((a) => [a.id, a]));
    for (const k of [3, 4, 5]) expect(byId.get(`${S}:${k}`)).toMatchObject({ err: null, ack: { duplicate: true } });
    for (const k of [6, 7, 8]) expect(byId.get(`${S}:${k}`)).toMatchObject({ err: null, ack: { duplicate: false } });
    expect(await storedIds(bus.stream(S))).toEqual(ids(1, 8));
    expect(gatesOf(bus).size).toBe(0);
  });

  it("close() while messages are held: every callback is called once (BUS_CLOSED), close() resolves, nothing held is stored", async () => {
    const options = testStreamOptions('RV');
    await seed(options, 5);
    const bus = await connect(options);
    await bus.ensureStream(S, HISTORY);
    const log: string[] = [];
    const answers: Answer[] = [];
    for (const k of [4, 5, 6, 7]) publish(bus, k, log, answers);
    await bus.close();
    expect(answers.map((a) => [a.id, codeOf(a.err)])).toEqual([4, 5, 6, 7].map((k) => [`${S}:${k}`, 'BUS_CLOSED']));
    expect(await storedIds(bus.stream(S))).toEqual(ids(1, 5));
  });

  it('close() while the republished messages are being settled (their stored copies being read): the held messages are answered, once each, none stored', async () => {
    const options = testStreamOptions('RV');
    await seed(options, 5);
    const bus = await connect(options);
    await bus.ensureStream(S, HISTORY);
    // Reading a stored duplicate takes a while: close() comes in the middle of it.
    const streamsApi = bus.jsm.streams as unknown as { getMessage: (...a: unknown[]) => Promise<unknown> };
    const getMessage = streamsApi.getMessage.bind(streamsApi);
    let reads = 0;
    streamsApi.getMessage = async (...a: unknown[]) => {
      reads++;
      const r = await getMessage(...a);
      await new Promise((resolve) => setTimeout(resolve, 150));
      return r;
    };
    const log: string[] = [];
    const answers: Answer[] = [];
    for (const k of [4, 5, 6, 7]) publish(bus, k, log, answers);
    await until(() => reads >= 2, 'the duplicates of 4 and 5 being settled', 5_000);
    await bus.close();
    await until(() => answers.length >= 4, 'four answers', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answers.map((a) => a.id).sort()).toEqual(ids(4, 7));
    for (const k of [6, 7]) expect(answers.find((a) => a.id === `${S}:${k}`)?.err).toBeInstanceOf(OutboxError);
    expect(await storedIds(bus.stream(S))).toEqual(ids(1, 5));
  });

  it('the stream deleted while messages are held: the republished ones fail (503), the held ones fail with them, unsent; publishing from event 1 again fills the new stream once, in order', async () => {
    const options = testStreamOptions('RV');
    await seed(options, 5);
    const bus = await connect(options);
    await bus.ensureStream(S, HISTORY);
    await jsm.streams.delete(bus.stream(S));
    const log: string[] = [];
    const answers: Answer[] = [];
    spySends(bus, log);
    for (const k of [4, 5, 6]) publish(bus, k, log, answers);
    await until(() => answers.length === 3, 'three answers', 10_000);
    expect(answers.map((a) => [a.id, codeOf(a.err)])).toEqual([4, 5, 6].map((k) => [`${S}:${k}`, 'BUS_ERROR']));
    expect(log.filter((l) => l.startsWith('send'))).toEqual([`send ${S}:4`, `send ${S}:5`]);
    // The publisher then publishes from the start (the bus holds less than its cursor).
    const again: Answer[] = [];
    for (let k = 1; k <= 8; k++) publish(bus, k, log, again);
    await until(() => again.length === 8, 'eight answers', 10_000);
    expect(again.filter((a) => a.err !== null)).toEqual([]);
    expect(await storedIds(bus.stream(S))).toEqual(ids(1, 8));
    expect(gatesOf(bus).size).toBe(0);
  });

  it('a republished message JetStream never acknowledges (a no_ack stream): PUBLISH_TIMEOUT, and the message held behind it fails with that code, unsent and not stored', async () => {
    const options = { ...testStreamOptions('RV'), ackTimeoutMs: 300 };
    const bus = await connect(options);
    await jsm.streams.add({ name: bus.stream(S), subjects: [bus.subject(S)], storage: 'memory', no_ack: true });
    // Events 1..5 stored through another bus (whose messages are never acknowledged either).
    const seeder = await connect(options);
    const seeded: Answer[] = [];
    for (let k = 1; k <= 5; k++) publish(seeder, k, [], seeded);
    await until(async () => (await jsm.streams.info(bus.stream(S))).state.messages === 5, 'five events stored');
    await until(() => seeded.length === 5, 'the seeder timed out');
    await bus.ensureStream(S, HISTORY);
    const log: string[] = [];
    const answers: Answer[] = [];
    spySends(bus, log);
    publish(bus, 5, log, answers);
    publish(bus, 6, log, answers);
    await until(() => answers.length === 2, 'two answers', 10_000);
    expect(answers.map((a) => [a.id, codeOf(a.err)])).toEqual([
      [`${S}:5`, 'PUBLISH_TIMEOUT'],
      [`${S}:6`, 'PUBLISH_TIMEOUT'],
    ]);
    expect(log.filter((l) => l.startsWith('send'))).toEqual([`send ${S}:5`]);
    expect((await jsm.streams.info(bus.stream(S))).state.messages).toBe(5);
    expect(gatesOf(bus).size).toBe(0);
  });

  it('a held message is not stored after a republished one whose stored copy differs (EVENT_MISMATCH), also when the held message was published before the stream was checked', async () => {
    const options = testStreamOptions('RV');
    await seed(options, 5);
    const bus = await connect(options);
    const log: string[] = [];
    const answers: Answer[] = [];
    // Not awaiting ensureStream: all three wait for the check, then 5' is a duplicate with other bytes.
    bus.publish(message(5, 999), (err, ack) => answers.push({ id: `${S}:5`, err, ack }));
    publish(bus, 6, log, answers);
    publish(bus, 7, log, answers);
    await until(() => answers.length === 3, 'three answers', 10_000);
    expect(answers.map((a) => [a.id, codeOf(a.err)])).toEqual([
      [`${S}:5`, 'EVENT_MISMATCH'],
      [`${S}:6`, 'EVENT_MISMATCH'],
      [`${S}:7`, 'EVENT_MISMATCH'],
    ]);
    expect(await storedIds(bus.stream(S))).toEqual(ids(1, 5));
  });
});

// ---------------------------------------------------------------------------------------------
// Codecs: the encoders read each field once

describe('encoders: what is checked is what is written', () => {
  /** A cancel whose userId getter encodes another message with the same codec (a re-entrant encode). */
  function reentrant(codec: Codec): { msg: Message; plain: Record<string, unknown> } {
    const other = { type: 'cancel', symbol: 'OTHERSYMBOL', seq: 123456789, reqId: 987654321, orderId: 55555, userId: 7, ts: 1_700_000_000_000_001 } as Message;
    const plain = { type: 'cancel', symbol: 'A', seq: 1, reqId: 2, orderId: 3, userId: 5, ts: 4 };
    const msg: Record<string, unknown> = { type: 'cancel', symbol: 'A', seq: 1, reqId: 2, orderId: 3, ts: 4 };
    Object.defineProperty(msg, 'userId', {
      enumerable: true,
      get: () => {
        codec.encodeToBuffer(other);
        return 5;
      },
    });
    return { msg: msg as unknown as Message, plain };
  }

  it('binary: a field getter that encodes another message meanwhile does not change what is written (the fields are read before anything is written)', () => {
    const { msg, plain } = reentrant(binaryCodec);
    const buf = Buffer.alloc(512, 0xee);
    const n = binaryCodec.encode(msg, buf, 0);
    expect(n).toBe(binaryCodec.encodedLength(plain as unknown as Message));
    expect(buf[n]).toBe(0xee);
    expect(binaryCodec.decode(buf.subarray(0, n))).toEqual(plain);
  });

  it('JSON: a field getter that encodes another message meanwhile does not change what is written (the nested encode has scratch of its own)', () => {
    // README (codecs): "encode writes into the caller's buffer at offset and returns the number of
    // bytes written, which is encodedLength(msg)", and the fix's aim (json-codec.ts measure): the
    // values read once are the ones written. measure() keeps them in module-level scratch: an
    // encode run from a getter in the middle of measure() overwrote the fields read so far, and the
    // record written mixed the other message's symbol, seq, reqId and orderId with this one's, and
    // was longer than the length returned. A nested measure now gets scratch of its own.
    const { msg, plain } = reentrant(jsonCodec);
    const buf = Buffer.alloc(512, 0x20);
    const n = jsonCodec.encode(msg, buf, 0);
    const expected = jsonCodec.encodeToBuffer(plain as unknown as Message);
    expect({ returned: n, record: buf.subarray(0, Math.max(n, buf.indexOf('}') + 1)).toString('latin1') }).toEqual({ returned: expected.length, record: expected.toString('latin1') });
  });
});

// ---------------------------------------------------------------------------------------------
// The WAL writer's segment-chain check: no false positives on healthy logs

describe("WalWriter.open's segment-chain check on healthy logs", () => {
  const SEG = 4096;
  const MAXREC = 512;

  function rnd(seed: number): () => number {
    let s = seed >>> 0;
    return () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function records(dir: string): { offset: number; bytes: Buffer }[] {
    const r = new WalReader(dir, { maxRecordSize: MAXREC });
    const rec = new WalRecord();
    const out: { offset: number; bytes: Buffer }[] = [];
    try {
      for (let x = r.next(rec); x !== null; x = r.next(rec)) out.push({ offset: x.offset, bytes: Buffer.from(x.buf.subarray(x.start, x.end)) });
    } finally {
      r.close();
    }
    return out;
  }

  async function append(w: WalWriter, next: () => number, count: number, tag: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const len = 1 + Math.floor(next() * (MAXREC - 1));
      w.append(Buffer.alloc(len, (tag + i) & 0xff || 1));
      if (i % 7 === 0) await w.sync();
    }
    await w.sync();
  }

  for (const preallocate of [false, true]) {
    for (const durability of ['none', 'batch'] as const) {
      it(`rolled logs (preallocate ${String(preallocate)}, durability ${durability}) open again after a clean close, a crash, a torn tail, a spare left behind, an empty next segment and a truncateLog at every segment boundary and some record boundaries; all their records read back`, async () => {
        const next = rnd(preallocate ? 7 : 11);
        const opts = { segmentSize: SEG, maxRecordSize: MAXREC, preallocate, durability, cleanClose: true };
        const dir = tmpDir('gx3-review-wal-');
        let w = WalWriter.open(dir, opts);
        await append(w, next, 60, 1);
        await w.close(); // clean close marker
        w = WalWriter.open(dir, opts);
        await append(w, next, 30, 2);
        w.abort(); // a crash: no marker
        // A torn tail in the last segment (half a header of garbage) and a leftover spare.
        const segs = listSegments(nodeFileIO, dir);
        expect(segs.length).toBeGreaterThan(4);
        const last = segs[segs.length - 1];
        if (last === undefined) throw new Error('no segment');
        const all = records(dir);
        const lastEnd = (all[all.length - 1]?.offset ?? 0) + 8 + (all[all.length - 1]?.bytes.length ?? 0);
        const fd = fs.openSync(last.file, 'r+');
        fs.writeSync(fd, Buffer.from([7, 0, 0]), 0, 3, lastEnd - last.base);
        fs.closeSync(fd);
        fs.writeFileSync(path.join(dir, '.spare-1-abc-0'), Buffer.alloc(100));
        w = WalWriter.open(dir, opts);
        expect(w.repaired).toBeDefined();
        expect(w.nextOffset).toBe(lastEnd);
        await w.close();
        // An empty next segment (a roll that created it and wrote nothing yet) at the end of the data.
        fs.writeFileSync(path.join(dir, `${String(lastEnd).padStart(20, '0')}.wal`), Buffer.alloc(0));
        w = WalWriter.open(dir, opts);
        expect(w.nextOffset).toBe(lastEnd);
        await append(w, next, 20, 3);
        await w.close();
        const full = records(dir);
        expect(full.length).toBe(all.length + 20);

        // truncateLog at every segment base and at every fifth record boundary, then reopened,
        // written across a roll, closed and read back.
        const bases = listSegments(nodeFileIO, dir).map((s) => s.base);
        const cuts = [...new Set([0, ...bases, ...full.filter((_, i) => i % 5 === 3).map((r) => r.offset)])];
        const failures: string[] = [];
        for (const cut of cuts) {
          const copy = tmpDir('gx3-review-wal-cut-');
          fs.cpSync(dir, copy, { recursive: true });
          try {
            truncateLog(copy, cut, { maxRecordSize: MAXREC });
            const cw = WalWriter.open(copy, opts);
            if (cw.nextOffset !== cut) failures.push(`cut ${cut}: reopened at ${cw.nextOffset}`);
            for (let i = 0; i < 12; i++) cw.append(Buffer.alloc(400, 9));
            await cw.close();
            WalWriter.open(copy, { ...opts, cleanClose: false }).closeSync();
            const back = records(copy);
            const kept = full.filter((r) => r.offset < cut).length;
            if (back.length !== kept + 12) failures.push(`cut ${cut}: ${back.length} records read back, expected ${kept + 12}`);
          } catch (err) {
            failures.push(`cut ${cut}: ${(err as Error).message}`);
          } finally {
            fs.rmSync(copy, { recursive: true, force: true });
          }
        }
        expect(failures).toEqual([]);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// The engine's replay bounded by the command log's end, with the JSON codec

describe("the engine's replay with the JSON codec over a rolled command log", () => {
  const E = 'JS';
  /** The smallest segment the logs take: a record of the WAL's default maxRecordSize plus its header. */
  const SMALL_SEGMENT = (1 << 20) + 8;
  const N = 8000;
  let cmds: Command[];
  let dataDir: string;
  let finalHash: string;
  /** Commands wholly in the command log's first segment. */
  let k1 = 0;
  let k1Hash = '';

  const open = (dir: string): Promise<Engine> => Engine.open({ dataDir: dir, symbols: [{ symbol: E }], durability: 'none', codec: 'json', segmentSize: SMALL_SEGMENT });

  async function run(dir: string, list: readonly Command[]): Promise<string> {
    const engine = await open(dir);
    const actor = engine.actor(E) as SymbolActor;
    for (const c of list) {
      for (;;) {
        const r = actor.trySubmit({ ...c });
        if (typeof r === 'number') break;
        await actor.waitForProcessed(actor.lastSubmittedSeq - (actor.queued >> 1));
      }
    }
    await actor.waitForDurable(list.length);
    const hash = bookState(actor.book).hash;
    await engine.close();
    return hash;
  }

  function copy(from: string, keepMarkers: boolean): string {
    const dir = tmpDir('gx3-review-json-case-');
    fs.cpSync(from, dir, { recursive: true, filter: (src) => path.basename(src) !== 'LOCK' });
    if (!keepMarkers) {
      fs.rmSync(path.join(cmdDirOf(dir, E), 'CLEAN'), { force: true });
      fs.rmSync(path.join(evDirOf(dir, E), 'CLEAN'), { force: true });
    }
    return dir;
  }

  beforeAll(async () => {
    cmds = mixedCommands(E, N, 5);
    dataDir = tmpDir('gx3-review-json-');
    finalHash = await run(dataDir, cmds);
    const segs = listSegments(nodeFileIO, cmdDirOf(dataDir, E));
    expect(segs).toHaveLength(2);
    const second = segs[1]?.base ?? 0;
    const r = new WalReader(cmdDirOf(dataDir, E), {});
    const rec = new WalRecord();
    for (let x = r.next(rec); x !== null && x.offset < second; x = r.next(rec)) k1++;
    r.close();
    expect(k1).toBeGreaterThan(1000);
    expect(k1).toBeLessThan(N);
    k1Hash = await run(tmpDir('gx3-review-json-prefix-'), cmds.slice(0, k1));
  }, 30_000);

  it('a cleanly closed directory and its crash image (no markers) recover every command, twice, and the log goes on', async () => {
    for (const keep of [true, false]) {
      const dir = copy(dataDir, keep);
      for (let round = 0; round < 2; round++) {
        const engine = await open(dir);
        const actor = engine.actor(E) as SymbolActor;
        expect(actor.recovery.commands).toBe(N + 10 * round);
        expect(bookState(actor.book).hash).toBe(finalHash);
        // Cancels of unknown orders (rejected, the book unchanged) appended after the recovery.
        for (let i = 0; i < 10; i++) await engine.submit(cancel(E, 1_000_000 + i, { ts: 1 }));
        await engine.close();
      }
    }
  });

  it("the second command-log segment torn inside its first record (a crash image): the first segment's commands recovered, the outbox ahead of them cut and derived again, opened twice", async () => {
    const dir = copy(dataDir, false);
    const segs = listSegments(nodeFileIO, cmdDirOf(dir, E));
    const second = segs[1];
    if (second === undefined) throw new Error('no second segment');
    const firstLen = fs.readFileSync(second.file).readUInt32LE(0);
    fs.truncateSync(second.file, 8 + Math.floor(firstLen / 2));
    for (let round = 0; round < 2; round++) {
      const engine = await open(dir);
      const actor = engine.actor(E) as SymbolActor;
      expect(actor.recovery.commands).toBe(k1);
      if (round === 0) expect(actor.recovery.outboxBytesCut).toBeGreaterThan(0);
      expect(bookState(actor.book).hash).toBe(k1Hash);
      await engine.close();
    }
  });

  it('a record header zeroed in the first segment of a cleanly closed directory: RECOVERY_FAILED caused by CORRUPT, never a shorter replay', async () => {
    const dir = copy(dataDir, true);
    const first = listSegments(nodeFileIO, cmdDirOf(dir, E))[0];
    if (first === undefined) throw new Error('no segment');
    const r = new WalReader(cmdDirOf(dir, E), {});
    const rec = new WalRecord();
    let at = -1;
    for (let x = r.next(rec), i = 0; x !== null; x = r.next(rec), i++) {
      if (i === 1000) {
        at = x.offset;
        break;
      }
    }
    r.close();
    const fd = fs.openSync(first.file, 'r+');
    fs.writeSync(fd, Buffer.alloc(8), 0, 8, at);
    fs.closeSync(fd);
    const err = await open(dir).then(
      async (e) => {
        await e.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('RECOVERY_FAILED');
    expect(((err as Error).cause as { code?: string } | undefined)?.code).toBe('CORRUPT');
  });
});

// ---------------------------------------------------------------------------------------------
// The gateway: an answer's order as its own command left it

describe("answers' orders captured at their command's end", () => {
  const capturesOf = (s: TestServer): Map<number, unknown> => (s.gateway.feeds.get(SYM) as unknown as { captures: Map<number, unknown> }).captures;

  async function authed(url: string, key: string): Promise<WsClient> {
    const ws = await WsClient.connect(wsUrl(url));
    const a = await ws.call({ op: 'auth', key });
    expect(a.ok).toBe(true);
    return ws;
  }

  it('a WebSocket frame of orders that trade with each other: each answer shows its order as its own command left it, GET shows the later fills; refused orders, resubmissions and amendments leave no capture behind', async () => {
    const s = await start({ durability: 'batch' });
    try {
      const ws = await authed(s.url, ALICE);
      // Alice's sells, then bob's buy taking them all, in one batch.
      const frame = [
        { symbol: SYM, side: 'sell', type: 'limit', price: 1000, qty: 5, clientOrderId: 'f-1' },
        { symbol: SYM, side: 'sell', type: 'limit', price: 1001, qty: 5, clientOrderId: 'f-2' },
        { symbol: SYM, side: 'sell', type: 'limit', price: 1, qty: 5 }, // out of the band: refused, never taken
        { symbol: SYM, side: 'sell', type: 'limit', price: 1000, qty: 5, clientOrderId: 'f-1' }, // a resubmission in the same frame
      ];
      const bob = await authed(s.url, BOB);
      const pa = ws.call({ op: 'order', order: frame });
      const pb = bob.call({ op: 'order', order: [{ symbol: SYM, side: 'buy', type: 'limit', price: 1001, qty: 10 }] });
      const [a, b] = await Promise.all([pa, pb]);
      const results = a.results ?? [];
      expect(results.map((r) => r.ok === true)).toEqual([true, true, false, true]);
      expect(results[2]?.error?.code).toBeDefined();
      const [r1, r2, , r4] = results as [WsMsg, WsMsg, WsMsg, WsMsg];
      expect(r4.duplicate).toBe(true);
      expect(r4.order).toEqual(r1.order);
      const buy = (b.results ?? [])[0] as WsMsg;
      expect(buy.order).toMatchObject({ status: 'filled', filledQty: 10 });
      // Each sell's answer is its order as its own command left it: open, unfilled, as its events say.
      for (const r of [r1, r2]) {
        expect(r.events?.map((e: Event) => e.type)).toEqual(['accepted', 'added']);
        expect(r.order).toMatchObject({ status: 'open', filledQty: 0, remainingQty: 5, updatedAt: r.events?.[0]?.ts });
      }
      // GET afterwards holds the fills.
      const alice = new Client(s.url, ALICE);
      for (const r of [r1, r2]) expect(await alice.order(r.order?.orderId ?? -1)).toMatchObject({ status: 'filled', filledQty: 5, remainingQty: 0 });
      // An amendment by quantity alone that is a size increase (two commands) of an order that
      // another user's order, sent at the same time, fills partly (before or after it).
      const p = await ws.call({ op: 'order', order: { symbol: SYM, side: 'sell', type: 'limit', price: 1200, qty: 4 } });
      const id = p.order?.orderId;
      const [am, hit] = await Promise.all([
        ws.call({ op: 'amend', symbol: SYM, orderId: id, qty: 8 }),
        bob.call({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'limit', price: 1200, qty: 3 } }),
      ]);
      expect(hit.order?.filledQty).toBe(3);
      expect(am.ok, JSON.stringify(am)).toBe(true);
      const amended = am.order;
      // The answer is the order as the amendment left it, and agrees with the amendment's own events.
      const ownTrades = (am.events ?? []).filter((e: Event) => e.type === 'trade').length;
      expect(ownTrades).toBe(0);
      expect(amended?.remainingQty).toBe((amended?.qty ?? 0) - (amended?.filledQty ?? 0));
      await until(() => capturesOf(s).size === 0, 'every capture taken', 5_000);
      await ws.close();
      await bob.close();
    } finally {
      await s.close();
    }
  });

  it('commands that fail after they were taken (a halt on a failed fdatasync): HALTED answers, and no capture is left behind', async () => {
    const s = await start({ durability: 'batch' });
    try {
      const ws = await authed(s.url, ALICE);
      faults.failSyncs = true;
      const r = await ws.call({ op: 'order', order: [1, 2, 3].map((k) => ({ symbol: SYM, side: 'buy', type: 'limit', price: 500 + k, qty: 1 })) });
      expect((r.results ?? []).map((x) => x.error?.code)).toEqual(['HALTED', 'HALTED', 'HALTED']);
      expect(capturesOf(s).size).toBe(0);
      await ws.close();
    } finally {
      faults.failSyncs = false;
      await s.close();
    }
  });
});

