// Suites of the lower layers, each run in its own process: the order book (W1 and W2 replays), the
// codecs (binary and JSON, encode and decode), the WAL (appends with and without group commit, and
// reading back) and the outbox publisher (to the MemoryBus and to NATS JetStream).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BinaryCodec, DecodedMessage, JsonCodec, type Event, type Message } from '@gx3/codecs';
import { EventOutbox, MemoryBus, NatsJetStreamBus, Publisher, type Bus } from '@gx3/outbox-publisher';
import { WalReader, WalRecord, WalWriter } from '@gx3/wal';
import { commandAt } from '../engine-replay.js';
import { generateText, type GeneratorOptions } from '../generator.js';
import { replay } from '../replay.js';
import { parseWorkload } from '../workload.js';
import { allocationMeter, measureLoop } from './measure.js';
import type { Metric, SuiteDef, SuiteRun } from './types.js';

export const W2: GeneratorOptions = { seed: 7, mix: [40, 25, 10, 5, 5, 5, 5, 5] };

function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

const m = (name: string, value: number, unit: string, better: 'higher' | 'lower', kind?: 'throughput' | 'latency'): Metric => ({
  name,
  value,
  unit,
  better,
  ...(kind === undefined ? {} : { kind }),
});

function bookSuite(id: string, title: string, gen: GeneratorOptions): SuiteDef {
  return {
    id,
    layer: 'orderbook',
    title,
    nodeFlags: ['--expose-gc'],
    run(smoke) {
      const w = parseWorkload(generateText({ ...gen, ops: smoke ? 50_000 : 1_000_000 }));
      const { perf, summary } = replay(w);
      return Promise.resolve({
        metrics: [
          m('opsPerSec', perf.opsPerSec, 'ops/s', 'higher', 'throughput'),
          m('nsPerOp', perf.nsPerOp, 'ns', 'lower'),
          m('p50Ns', perf.p50Ns, 'ns', 'lower', 'latency'),
          m('p99Ns', perf.p99Ns, 'ns', 'lower', 'latency'),
          m('p999Ns', perf.p999Ns, 'ns', 'lower', 'latency'),
          m('bytesPerOp', perf.allocBytesPerOp, 'B', 'lower'),
          m('gcCount', perf.gcCount, '', 'lower'),
        ],
        notes: [`${w.length.toLocaleString('en-US')} operations, ${summary.trades.toLocaleString('en-US')} trades; latency samples include one timer read (~${perf.timerNs} ns)`],
      });
    },
  };
}

/** A representative mix of records: the commands of a W1 prefix and the events they produce. */
function sampleMessages(n: number): Message[] {
  const w = parseWorkload(generateText({ ops: n, prefill: 0 }));
  const out: Message[] = [];
  const ts = 1_700_000_000_000_000;
  for (let i = 0; i < w.length; i++) {
    const c = commandAt(w, i);
    c.symbol = 'BTCUSDT';
    c.seq = i + 1;
    c.ts = ts + i;
    out.push(c);
    // Literal objects (one shape per type), as the engine's event sink keeps them.
    const e: Event =
      i % 3 === 0
        ? { symbol: 'BTCUSDT', seq: i + 1, eventSeq: i + 1, ts, type: 'trade', makerOrderId: i + 1, takerOrderId: i + 2, makerUserId: 3, takerUserId: 4, takerSide: 'buy', price: 100_000 + (i % 50), qty: 5, makerRemaining: 2 }
        : i % 3 === 1
          ? { symbol: 'BTCUSDT', seq: i + 1, eventSeq: i + 1, ts, type: 'accepted', orderType: 'limit', orderId: i + 1, userId: 7, side: 'sell', price: 100_000, qty: 9, tif: 'GTC' }
          : { symbol: 'BTCUSDT', seq: i + 1, eventSeq: i + 1, ts, type: 'cmdEnd', events: 2 };
    out.push(e);
  }
  return out;
}

const codecsSuite: SuiteDef = {
  id: 'codecs',
  layer: 'codecs',
  title: 'codecs: encode and decode of a mix of commands and events (binary into a reused buffer, JSON for contrast)',
  nodeFlags: ['--expose-gc'],
  run(smoke) {
    const msgs = sampleMessages(smoke ? 5_000 : 50_000);
    const binary = new BinaryCodec();
    const json = new JsonCodec();
    const buf = Buffer.alloc(msgs.length * binary.maxLength);
    const offsets = new Float64Array(msgs.length + 1);
    const encodeAll = (): void => {
      let at = 0;
      for (let i = 0; i < msgs.length; i++) {
        offsets[i] = at;
        at += binary.encode(msgs[i] as Message, buf, at);
      }
      offsets[msgs.length] = at;
    };
    const scratch = new DecodedMessage();
    const decodeAll = (): void => {
      for (let i = 0; i < msgs.length; i++) {
        const at = offsets[i] as number;
        binary.decodeInto(buf, at, (offsets[i + 1] as number) - at, scratch);
      }
    };
    const rounds = smoke ? 2 : 10;
    for (let r = 0; r < 10; r++) {
      encodeAll();
      decodeAll();
    }
    const enc = measureLoop(msgs.length * rounds, () => {
      for (let r = 0; r < rounds; r++) encodeAll();
    });
    const dec = measureLoop(msgs.length * rounds, () => {
      for (let r = 0; r < rounds; r++) decodeAll();
    });
    const jsonMsgs = msgs.slice(0, Math.min(msgs.length, 20_000));
    const texts = jsonMsgs.map((x) => json.encodeToBuffer(x));
    const jenc = measureLoop(jsonMsgs.length, () => {
      for (const x of jsonMsgs) json.encodeToBuffer(x);
    });
    const jdec = measureLoop(texts.length, () => {
      for (const t of texts) json.decode(t);
    });
    return Promise.resolve({
      metrics: [
        m('binaryEncodeOpsPerSec', enc.opsPerSec, 'records/s', 'higher', 'throughput'),
        m('binaryEncodeNs', enc.nsPerOp, 'ns', 'lower'),
        m('binaryEncodeBytesPerOp', enc.bytesPerOp, 'B', 'lower'),
        m('binaryDecodeNs', dec.nsPerOp, 'ns', 'lower'),
        m('binaryDecodeBytesPerOp', dec.bytesPerOp, 'B', 'lower'),
        m('binaryGcCount', enc.gcCount + dec.gcCount, '', 'lower'),
        m('jsonEncodeNs', jenc.nsPerOp, 'ns', 'lower'),
        m('jsonDecodeNs', jdec.nsPerOp, 'ns', 'lower'),
        m('jsonDecodeBytesPerOp', jdec.bytesPerOp, 'B', 'lower'),
      ],
      notes: [`${msgs.length.toLocaleString('en-US')} records (commands of a W1 prefix and trade, accepted and CmdEnd events), ${rounds} passes`],
    });
  },
};

const walSuite: SuiteDef = {
  id: 'wal',
  layer: 'wal',
  title: 'WAL: 64-byte records appended (no sync; group commit every 1024), and read back with CRC checks',
  nodeFlags: ['--expose-gc'],
  async run(smoke) {
    const n = smoke ? 50_000 : 1_000_000;
    const payload = Buffer.alloc(64, 7);
    const dir = tmp('gx3-bench-wal-');
    try {
      const w = WalWriter.open(path.join(dir, 'none'), { durability: 'none' });
      for (let i = 0; i < 10_000; i++) w.append(payload);
      const append = measureLoop(n, () => {
        for (let i = 0; i < n; i++) w.append(payload);
        w.flush();
      });
      await w.close();
      const ws = WalWriter.open(path.join(dir, 'batch'), { durability: 'batch' });
      const syncN = smoke ? 20_000 : 300_000;
      const t0 = performance.now();
      for (let i = 0; i < syncN; i++) {
        ws.append(payload);
        if ((i & 1023) === 1023) await ws.sync();
      }
      await ws.sync();
      const syncSeconds = (performance.now() - t0) / 1000;
      await ws.close();
      const reader = new WalReader(path.join(dir, 'none'));
      const rec = new WalRecord();
      let read = 0;
      // Everything appended to the log is read: the 10,000 warm-up records and the n timed ones.
      const rd = measureLoop(n + 10_000, () => {
        while (reader.next(rec)) read++;
      });
      reader.close();
      return {
        metrics: [
          m('appendPerSec', append.opsPerSec, 'records/s', 'higher', 'throughput'),
          m('appendNs', append.nsPerOp, 'ns', 'lower'),
          m('appendBytesPerOp', append.bytesPerOp, 'B', 'lower'),
          m('appendGcCount', append.gcCount, '', 'lower'),
          m('syncEvery1024PerSec', syncN / syncSeconds, 'records/s', 'higher'),
          m('readPerSec', read / rd.seconds, 'records/s', 'higher'),
          m('readBytesPerOp', rd.bytesPerOp, 'B', 'lower'),
        ],
        notes: [`${n.toLocaleString('en-US')} records appended and read; ${syncN.toLocaleString('en-US')} with an fdatasync every 1024`],
      };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};

/** An outbox of `n` trade events, two per command. */
async function filledOutbox(dir: string, symbol: string, n: number): Promise<EventOutbox> {
  const outbox = EventOutbox.open(dir, { durability: 'none' });
  const ev: Event = { type: 'trade', symbol, seq: 0, eventSeq: 0, ts: 1_700_000_000_000_000, makerOrderId: 1, takerOrderId: 2, makerUserId: 3, takerUserId: 4, takerSide: 'buy', price: 100_000, qty: 5, makerRemaining: 0 };
  let eventSeq = 0;
  for (let seq = 1; eventSeq < n; seq++) {
    const k = Math.min(2, n - eventSeq);
    for (let j = 0; j < k; j++) {
      ev.seq = seq;
      ev.eventSeq = ++eventSeq;
      outbox.append(ev);
    }
    outbox.appendCmdEnd(symbol, seq, eventSeq, k, ev.ts);
  }
  await outbox.sync();
  return outbox;
}

function publisherSuite(id: string, busName: 'memory' | 'nats'): SuiteDef {
  return {
    id,
    layer: 'outbox',
    title: `outbox publisher to the ${busName === 'memory' ? 'MemoryBus' : 'NATS JetStream bus (dedup ids, order check)'}: events/s from a durable outbox until all are acknowledged`,
    nodeFlags: ['--expose-gc'],
    async run(smoke): Promise<SuiteRun> {
      const n = smoke ? 20_000 : busName === 'memory' ? 1_000_000 : 200_000;
      const symbol = `B${process.pid}${Date.now() % 100_000}`;
      let bus: Bus;
      if (busName === 'memory') bus = new MemoryBus();
      else {
        const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
        try {
          bus = await NatsJetStreamBus.connect({ servers: url, connectTimeoutMs: 2000, streamPrefix: 'GX3BENCH', subjectPrefix: 'gx3bench.events' });
        } catch (err) {
          if (process.env.CI !== undefined) throw err;
          return { metrics: [], skipped: `NATS unreachable at ${url}: ${(err as Error).message}` };
        }
      }
      const dir = tmp('gx3-bench-pub-');
      try {
        const outbox = await filledOutbox(dir, symbol, n);
        const pub = new Publisher({ dir, bus, outbox, window: 4096 });
        const meter = allocationMeter();
        const t0 = performance.now();
        pub.start();
        await pub.acknowledged(outbox.durableOffset);
        const seconds = (performance.now() - t0) / 1000;
        const alloc = meter.stop(n);
        await pub.stop();
        await outbox.close();
        if (bus instanceof NatsJetStreamBus) await bus.jsm.streams.delete(`GX3BENCH_${symbol}`).catch(() => false);
        return {
          metrics: [
            m('eventsPerSec', n / seconds, 'events/s', 'higher', 'throughput'),
            m('nsPerEvent', (seconds * 1e9) / n, 'ns', 'lower'),
            m('bytesPerEvent', alloc.bytesPerOp, 'B', 'lower'),
            m('gcCount', alloc.gcCount, '', 'lower'),
          ],
          notes: [`${n.toLocaleString('en-US')} trade events, window 4096`],
        };
      } finally {
        await bus.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export const CORE_SUITES: SuiteDef[] = [
  bookSuite('book-w1', 'order book: W1 replay (55% limit, 30% cancel, 15% aggressive limit; 1M operations)', {}),
  bookSuite('book-w2', 'order book: W2 replay (every operation kind, seed 7)', W2),
  codecsSuite,
  walSuite,
  publisherSuite('publisher-memory', 'memory'),
  publisherSuite('publisher-nats', 'nats'),
];
