// A publisher cursor kept in publisher.cursorDir, written for another history of the outbox and past
// the end of this one: set aside, every event of this outbox published (it failed before its fix).
import fs from 'node:fs';
import path from 'node:path';
import { MemoryBus, readCursor } from '@gx3/outbox-publisher';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../src/index.js';
import { evDirOf, limit, removeTmpDirs, SEGMENT, tmpDir } from './helpers.js';

afterEach(removeTmpDirs);

const SYM = 'BTCUSDT';

/** Polls `cond` for at most `ms` (a bound for something to happen at all, not a timing assertion). */
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

describe('engine: publisher cursors of another outbox history', () => {
  it('a cursor (kept in publisher.cursorDir) of another history, past the end of this outbox, is set aside: every event of this outbox is published', async () => {
    const cursorDir = tmpDir();
    // A first data directory publishes many events: its cursor goes far into its outbox.
    const data1 = tmpDir();
    const bus1 = new MemoryBus({ retain: true });
    const e1 = await Engine.open({ dataDir: data1, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, bus: bus1, publisher: { cursorDir } });
    for (let i = 1; i <= 40; i++) await e1.submit(limit(SYM, i, 'buy', 100, 1, { ts: 1 }));
    await e1.close();
    const old = readCursor(path.join(cursorDir, SYM));
    expect(old.offset).toBeGreaterThan(0);

    // Another data directory (another outbox history), written without a bus: a shorter outbox.
    const data2 = tmpDir();
    const e2 = await Engine.open({ dataDir: data2, symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
    for (let i = 1; i <= 3; i++) await e2.submit(limit(SYM, i, 'buy', 100, 1, { ts: 1 }));
    await e2.close();

    // Opened with a bus and the same cursorDir: the kept cursor belongs to the first history, its
    // offset means nothing in this outbox; the publisher sets such a cursor aside (cursorFor) and
    // publishes this outbox from its start. The engine must not first take it for a cursor of this
    // outbox that is ahead of it (and move it to this outbox's end, skipping all its events).
    const bus2 = new MemoryBus({ retain: true });
    const e3 = await Engine.open({ dataDir: data2, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, bus: bus2, publisher: { cursorDir } });
    try {
      await until(() => bus2.messages(SYM).length >= 6);
      expect(bus2.messages(SYM).map((m) => m.eventSeq)).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await e3.close();
    }
    expect(fs.existsSync(evDirOf(data2, SYM))).toBe(true);
  }, 20_000);
});
