// The EventOutbox: events and CmdEnd markers appended in order to the log, with either codec; a
// message that cannot be encoded leaves the log usable; options are checked; durability follows
// the log's (sync, onDurable, reopen).
import { codecByName, EncodeError, type CmdEndEvent, type Event } from '@gx3/codecs';
import { afterAll, describe, expect, it } from 'vitest';
import { EventOutbox, OutboxError } from '../src/index.js';
import { EventWriter, readOutbox, removeTmpDirs, thrownBy, tmpDir, trade, TS } from './helpers.js';

afterAll(removeTmpDirs);

describe('EventOutbox', () => {
  for (const codecName of ['binary', 'json'] as const) {
    it(`appends events and CmdEnd markers in order (${codecName} codec)`, async () => {
      const dir = tmpDir();
      const outbox = EventOutbox.open(dir, { durability: 'batch', codec: codecName });
      expect(outbox.codec).toBe(codecByName(codecName));
      const w = new EventWriter(outbox);
      w.command('AAA', 2);
      w.command('BBB', 1);
      w.command('AAA', 3);
      const durable = await outbox.sync();
      expect(durable).toBe(outbox.nextOffset);
      expect(outbox.durableOffset).toBe(outbox.nextOffset);
      await outbox.close();

      const records = readOutbox(dir, codecByName(codecName));
      const end = (symbol: string, seq: number, eventSeq: number, events: number): CmdEndEvent => ({ type: 'cmdEnd', symbol, seq, eventSeq, ts: TS + seq, events });
      const expected: Event[] = [
        trade('AAA', 1, 1),
        trade('AAA', 1, 2),
        end('AAA', 1, 2, 2),
        trade('BBB', 1, 1),
        end('BBB', 1, 1, 1),
        trade('AAA', 2, 3),
        trade('AAA', 2, 4),
        trade('AAA', 2, 5),
        end('AAA', 2, 5, 3),
      ];
      expect(records.map((r) => r.event)).toEqual(expected);
      // Records are contiguous, and the writer's boundaries are the offsets after each CmdEnd.
      for (let i = 1; i < records.length; i++) expect(records[i]?.offset).toBe(records[i - 1]?.next);
      const ends = records.filter((r) => r.event.type === 'cmdEnd').map((r) => r.next);
      expect(ends).toEqual(w.boundaries.map((b) => b.offset));
      expect(records.at(-1)?.next).toBe(durable);
    });
  }

  it('CmdEnd markers do not share state with the caller: each keeps its own fields', async () => {
    const dir = tmpDir();
    const outbox = EventOutbox.open(dir, { durability: 'none' });
    outbox.appendCmdEnd('AAA', 1, 0, 0, 5);
    outbox.appendCmdEnd('BBB', 9, 4, 2, 6);
    outbox.appendCmdEnd('AAA', 2, 0, 0, 7);
    await outbox.close();
    expect(readOutbox(dir).map((r) => r.event)).toEqual([
      { type: 'cmdEnd', symbol: 'AAA', seq: 1, eventSeq: 0, ts: 5, events: 0 },
      { type: 'cmdEnd', symbol: 'BBB', seq: 9, eventSeq: 4, ts: 6, events: 2 },
      { type: 'cmdEnd', symbol: 'AAA', seq: 2, eventSeq: 0, ts: 7, events: 0 },
    ]);
  });

  it('an event that cannot be encoded throws, appends nothing, and the outbox stays usable', async () => {
    const dir = tmpDir();
    const outbox = EventOutbox.open(dir, { durability: 'batch' });
    outbox.append(trade('AAA', 1, 1));
    const before = outbox.nextOffset;
    const bad = { ...trade('AAA', 1, 2), price: -1 };
    expect(thrownBy(() => { outbox.append(bad); })).toBeInstanceOf(EncodeError);
    expect(thrownBy(() => { outbox.append({ ...trade('AAA', 1, 2), symbol: 'lower case' }); })).toBeInstanceOf(EncodeError);
    expect(thrownBy(() => { outbox.appendCmdEnd('AAA', 1, -5, 1, 0); })).toBeInstanceOf(EncodeError);
    expect(outbox.nextOffset).toBe(before);
    outbox.append(trade('AAA', 1, 2));
    outbox.appendCmdEnd('AAA', 1, 2, 2, TS + 1);
    await outbox.sync();
    await outbox.close();
    expect(readOutbox(dir).map((r) => r.event.eventSeq)).toEqual([1, 2, 2]);
  });

  it('refuses a maxRecordSize below the codec longest record', () => {
    const dir = tmpDir();
    const e = thrownBy(() => EventOutbox.open(dir, { maxRecordSize: 8 }));
    expect(e).toBeInstanceOf(OutboxError);
    expect((e as OutboxError).code).toBe('INVALID_OPTIONS');
  });

  it('notifies durability, and a reopened outbox continues after what was synced', async () => {
    const dir = tmpDir();
    const outbox = EventOutbox.open(dir, { durability: 'batch' });
    const seen: number[] = [];
    const off = outbox.onDurable((o) => seen.push(o));
    const w = new EventWriter(outbox);
    w.commands('AAA', 3);
    expect(outbox.durableOffset).toBe(0);
    const d = await outbox.sync();
    expect(seen.at(-1)).toBe(d);
    off();
    await outbox.close();

    const again = EventOutbox.open(dir, { durability: 'batch' });
    expect(again.nextOffset).toBe(d);
    again.append(trade('AAA', 4, 7));
    again.appendCmdEnd('AAA', 4, 7, 1, TS + 4);
    await again.sync();
    await again.close();
    expect(readOutbox(dir).map((r) => r.event.eventSeq)).toEqual([1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 7]);
  });
});
