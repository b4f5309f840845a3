// Outbox history ids: an outbox gets one when first opened and keeps it; the publisher sends it with
// every event; the NATS bus refuses (HISTORY_MISMATCH) the events of an outbox started afresh into a
// stream that holds another history's events, instead of taking them for duplicates and dropping
// them (inside the duplicate window by their ids, after it by the subject's last event), and still
// accepts streams whose events carry no history id (published before history ids existed).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CURSOR_FILE, EventOutbox, HISTORY_FILE, HISTORY_HEADER, MemoryBus, NatsJetStreamBus, readHistory, type BusMessage, type PublishAck } from '../src/index.js';
import { EventWriter, expectOutboxError, openOutbox, publisher, publishUntilAcknowledged, removeTmpDirs, runCleanups, sleep, thrownBy, tmpDir, trade, until } from './helpers.js';
import { deleteStreams, manager, NATS_URL, natsProblem, readStream, testStreamOptions, unavailable } from './nats-helpers.js';
import { codecByName } from '@gx3/codecs';
import { jetstream } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';

const nats = unavailable(`NATS JetStream at ${NATS_URL}`, await natsProblem(NATS_URL), 'set NATS_URL');

afterEach(runCleanups);
afterAll(removeTmpDirs);

describe('outbox history ids', () => {
  it('an outbox gets a history id when first opened and keeps it when reopened; another outbox gets another', async () => {
    const dir = tmpDir();
    const a = openOutbox(dir);
    expect(a.history).toMatch(/^[0-9a-f]{32}$/);
    expect(readHistory(dir)).toBe(a.history);
    await a.close();
    const again = openOutbox(dir);
    expect(again.history).toBe(a.history);
    await again.close();
    const other = openOutbox(tmpDir());
    expect(other.history).not.toBe(a.history);
    await other.close();
  });

  it('a HISTORY file that does not hold an id is HISTORY_CORRUPT for the outbox and the publisher (not replaced)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).command('S', 1);
    await outbox.sync();
    fs.writeFileSync(path.join(dir, HISTORY_FILE), 'not an id\n');
    const p = publisher({ dir, bus: new MemoryBus(), outbox });
    expectOutboxError(thrownBy(() => { p.start(); }), 'HISTORY_CORRUPT');
    await outbox.close();
    const err = expectOutboxError(thrownBy(() => EventOutbox.open(dir)), 'HISTORY_CORRUPT');
    expect(err.message).toContain('not an id');
    expect(fs.readFileSync(path.join(dir, HISTORY_FILE), 'utf8')).toBe('not an id\n');
  });

  it('the publisher sends each event with its outbox history id (none for an outbox without a HISTORY file)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 2);
    await outbox.sync();
    const bus = new MemoryBus({ retain: true });
    const p = publisher({ dir, bus, outbox });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset);
    await p.stop();
    expect(bus.messages('S').map((m) => m.history)).toEqual([outbox.history, outbox.history, outbox.history, outbox.history]);

    fs.rmSync(path.join(dir, HISTORY_FILE));
    fs.rmSync(path.join(dir, CURSOR_FILE), { force: true });
    const seen: (string | undefined)[] = [];
    const p2 = publisher({
      dir,
      outbox,
      bus: { name: 'recording', publish: (m, done) => { seen.push(m.history); done(null, { duplicate: false }); }, close: () => Promise.resolve() },
    });
    p2.start();
    await until(() => p2.stats().acknowledgedOffset === outbox.durableOffset);
    await p2.stop();
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set([undefined]));
  });
});

describe.skipIf(nats.skip)('NATS JetStream bus and outbox histories', () => {
  const streams: string[] = [];
  afterAll(async () => {
    const { nc, jsm } = await manager(NATS_URL);
    await deleteStreams(jsm, streams);
    await nc.close();
  });

  for (const afterWindow of [false, true]) {
    it(`refuses a fresh outbox's events into a stream that holds another history's (${afterWindow ? 'after' : 'inside'} the duplicate window): HISTORY_MISMATCH, nothing dropped as a duplicate`, async () => {
      const opts = testStreamOptions('HM', afterWindow ? 300 : 60_000);
      const bus = await NatsJetStreamBus.connect(opts);
      streams.push(bus.stream('S'));
      try {
        const dirA = tmpDir();
        const a = openOutbox(dirA);
        const wA = new EventWriter(a);
        wA.commands('S', 3);
        await a.sync();
        expect(await publishUntilAcknowledged(dirA, a, bus, 5_000)).toMatchObject({ acknowledged: true, errors: [] });
        if (afterWindow) await sleep(800);
        // The data directory was wiped: a new outbox numbers its events from 1 again.
        const dirB = tmpDir();
        const b = openOutbox(dirB);
        new EventWriter(b).commands('S', 2);
        await b.sync();
        const bus2 = await NatsJetStreamBus.connect(opts);
        const { errors, acknowledged } = await publishUntilAcknowledged(dirB, b, bus2, 600);
        await bus2.close();
        expect(acknowledged).toBe(false);
        expect(errors.length).toBeGreaterThan(0);
        for (const e of errors) expectOutboxError(e, 'HISTORY_MISMATCH');
        expect(errors[0]?.message).toContain(a.history);
        expect(errors[0]?.message).toContain(b.history);
        const { nc, jsm } = await manager(NATS_URL);
        try {
          const held = await readStream(nc, jsm, bus.stream('S'));
          expect(held.map((m) => [m.event.eventSeq, m.history])).toEqual([1, 2, 3, 4, 5, 6].map((n) => [n, a.history]));
        } finally {
          await nc.close();
        }
        // The stream's own history goes on.
        wA.commands('S', 1);
        await a.sync();
        const bus3 = await NatsJetStreamBus.connect(opts);
        try {
          expect(await publishUntilAcknowledged(dirA, a, bus3, 5_000)).toMatchObject({ acknowledged: true, errors: [] });
        } finally {
          await bus3.close();
        }
        const { nc: nc2, jsm: jsm2 } = await manager(NATS_URL);
        try {
          expect((await readStream(nc2, jsm2, bus.stream('S'))).map((m) => m.event.eventSeq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        } finally {
          await nc2.close();
        }
      } finally {
        await bus.close();
      }
    });
  }

  for (const afterWindow of [false, true]) {
  it(`another history's event stored after this bus's check is HISTORY_MISMATCH, not a duplicate (${afterWindow ? "after the duplicate window: the order refusal's settling" : "inside the duplicate window: JetStream's duplicate"})`, async () => {
    const bus = await NatsJetStreamBus.connect(testStreamOptions('HR', afterWindow ? 300 : 60_000));
    streams.push(bus.stream('S'));
    const codec = codecByName('binary');
    const mine = 'a'.repeat(32);
    const message = (eventSeq: number, history: string): BusMessage => {
      const e = trade('S', eventSeq, eventSeq);
      const buf = new Uint8Array(codec.maxLength);
      return { symbol: 'S', eventSeq, id: `S:${eventSeq}`, previousId: eventSeq > 1 ? `S:${eventSeq - 1}` : undefined, payload: buf.subarray(0, codec.encode(e, buf, 0)), event: e, history };
    };
    const send = (msg: BusMessage): Promise<PublishAck> =>
      new Promise((resolve, reject) => {
        bus.publish(msg, (err, ack) => {
          if (err) reject(err);
          else resolve(ack as PublishAck);
        });
      });
    try {
      expect(await send(message(1, mine))).toEqual({ duplicate: false });
      // Another engine (another history) stores its event 2 behind this bus's back.
      const { nc } = await manager(NATS_URL);
      try {
        const h = headers();
        h.set(HISTORY_HEADER, 'b'.repeat(32));
        await jetstream(nc).publish(bus.subject('S'), message(2, 'b'.repeat(32)).payload, { msgID: 'S:2', headers: h });
      } finally {
        await nc.close();
      }
      if (afterWindow) await sleep(800);
      const err = await send(message(2, mine)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expectOutboxError(err, 'HISTORY_MISMATCH');
    } finally {
      await bus.close();
    }
  });
  }

  it('accepts a history into a stream whose last event carries no history id (published before history ids)', async () => {
    const opts = testStreamOptions('HL');
    const bus = await NatsJetStreamBus.connect(opts);
    streams.push(bus.stream('S'));
    const codec = codecByName('binary');
    const send = (eventSeq: number, history: string | undefined): Promise<PublishAck> => {
      const e = trade('S', eventSeq, eventSeq);
      const buf = new Uint8Array(codec.maxLength);
      const payload = buf.subarray(0, codec.encode(e, buf, 0));
      const msg: BusMessage = { symbol: 'S', eventSeq, id: `S:${eventSeq}`, previousId: eventSeq > 1 ? `S:${eventSeq - 1}` : undefined, payload, event: e, history };
      return new Promise((resolve, reject) => { bus.publish(msg, (err, ack) => { if (err) reject(err); else resolve(ack as PublishAck); }); });
    };
    try {
      expect(await send(1, undefined)).toEqual({ duplicate: false });
      expect(await send(2, undefined)).toEqual({ duplicate: false });
      const bus2 = await NatsJetStreamBus.connect(opts);
      try {
        const e3 = trade('S', 3, 3);
        const buf = new Uint8Array(codec.maxLength);
        const payload = buf.subarray(0, codec.encode(e3, buf, 0));
        const ack = await new Promise<PublishAck>((resolve, reject) => {
          bus2.publish({ symbol: 'S', eventSeq: 3, id: 'S:3', previousId: 'S:2', payload, event: e3, history: 'a'.repeat(32) }, (err, a) => { if (err) reject(err); else resolve(a as PublishAck); });
        });
        expect(ack).toEqual({ duplicate: false });
      } finally {
        await bus2.close();
      }
    } finally {
      await bus.close();
    }
  });
});
