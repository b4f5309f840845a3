// Restarts after a clean close: each log's clean-close marker lets the open skip the scan of its
// last segment, and the recovered state is the same as after a scan. Damage inside a cleanly
// closed log is still found: in the command log by the replay (every CRC checked: the engine
// refuses to open), in the outbox by its readers (the publisher reports CORRUPT and publishes
// nothing past the damage). Without the markers (what a crash leaves) the open scans.
import fs from 'node:fs';
import path from 'node:path';
import { binaryCodec, type Event } from '@gx3/codecs';
import { Side } from '@gx3/orderbook';
import { MemoryBus } from '@gx3/outbox-publisher';
import { listSegments, nodeFileIO, WalError } from '@gx3/wal';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, EngineError, type SymbolActor } from '../src/index.js';
import { cmdDirOf, evDirOf, limit, readCommandLog, readOutbox, removeTmpDirs, SEGMENT, tmpDir } from './helpers.js';

afterEach(removeTmpDirs);

const SYM = 'BTCUSDT';

/** Opens an engine on `dataDir`, submits `n` crossing limit orders, closes it cleanly. */
async function fill(dataDir: string, n: number): Promise<void> {
  const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT });
  const pending = [];
  for (let i = 1; i <= n; i++) pending.push(engine.submit(limit(SYM, i, i % 2 === 0 ? 'buy' : 'sell', 1000 + (i % 7), 1 + (i % 5), { userId: i % 3 })));
  await Promise.all(pending);
  await engine.close();
}

/** Flips one byte inside the payload of the record at `offset` of the last segment of `dir`. */
function damageRecord(dir: string, offset: number): void {
  const segments = listSegments(nodeFileIO, dir);
  const last = segments[segments.length - 1];
  if (last === undefined) throw new Error(`no segment in ${dir}`);
  const fd = fs.openSync(last.file, 'r+');
  try {
    const b = Buffer.alloc(1);
    const at = offset - last.base + 8 + 3;
    fs.readSync(fd, b, 0, 1, at);
    b[0] = (b[0] as number) ^ 0x5a;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}

function bookState(actor: SymbolActor): unknown {
  const orders: number[][] = [];
  for (const side of [Side.Buy, Side.Sell]) actor.book.forEachOrder(side, (id, user, price, qty) => orders.push([side, id, user, price, qty]));
  return orders;
}

describe('restart after a clean close', () => {
  it('leaves a marker in each log; the next open trusts them and recovers the same state as a scanning open', async () => {
    const dataDir = tmpDir();
    await fill(dataDir, 300);
    expect(fs.existsSync(path.join(cmdDirOf(dataDir, SYM), 'CLEAN'))).toBe(true);
    expect(fs.existsSync(path.join(evDirOf(dataDir, SYM), 'CLEAN'))).toBe(true);

    // The same files without the markers, as a crash leaves them.
    const copy = tmpDir();
    fs.cpSync(dataDir, copy, { recursive: true });
    fs.rmSync(path.join(cmdDirOf(copy, SYM), 'CLEAN'));
    fs.rmSync(path.join(evDirOf(copy, SYM), 'CLEAN'));

    const trusted = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT });
    const scanned = await Engine.open({ dataDir: copy, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT });
    try {
      const a = trusted.actor(SYM) as SymbolActor;
      const b = scanned.actor(SYM) as SymbolActor;
      expect([a.cmdLog.trustedClean, a.outbox.log.trustedClean]).toEqual([true, true]);
      expect([b.cmdLog.trustedClean, b.outbox.log.trustedClean]).toEqual([false, false]);
      // The markers are gone while the engine runs: a crash now must not find them.
      expect(fs.existsSync(path.join(cmdDirOf(dataDir, SYM), 'CLEAN'))).toBe(false);
      expect(fs.existsSync(path.join(evDirOf(dataDir, SYM), 'CLEAN'))).toBe(false);
      expect(a.recovery.commands).toBe(300);
      expect(b.recovery.commands).toBe(300);
      expect(a.recovery.tornTails).toBe(0);
      expect(bookState(a)).toEqual(bookState(b));
      expect(bookState(a)).not.toEqual([]);
      expect([a.cmdLog.nextOffset, a.outbox.nextOffset]).toEqual([b.cmdLog.nextOffset, b.outbox.nextOffset]);
      expect(a.cmdLog.tailRecordOffset).toBe(b.cmdLog.tailRecordOffset);
      expect(a.outbox.log.tailRecordOffset).toBe(b.outbox.log.tailRecordOffset);
      // Both go on from where they were: the next command gets the same sequence and event numbers.
      const x = await trusted.submit(limit(SYM, 301, 'buy', 1006, 3, { userId: 1, ts: 9 }));
      const y = await scanned.submit(limit(SYM, 301, 'buy', 1006, 3, { userId: 1, ts: 9 }));
      expect(x.seq).toBe(301);
      expect(x.events).toEqual(y.events);
    } finally {
      await trusted.close();
      await scanned.close();
    }
    const events = readOutbox(evDirOf(dataDir, SYM), binaryCodec).map((m) => m.msg);
    const seqs = events.filter((e: Event) => e.type !== 'cmdEnd').map((e) => e.eventSeq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  });

  it('a damaged command record in a cleanly closed command log still stops the open (the replay checks every CRC)', async () => {
    const dataDir = tmpDir();
    await fill(dataDir, 50);
    const cmds = readCommandLog(cmdDirOf(dataDir, SYM), binaryCodec);
    damageRecord(cmdDirOf(dataDir, SYM), (cmds[10] as { offset: number }).offset);
    const err = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('RECOVERY_FAILED');
    expect((err as Error).message).toMatch(/CRC/);
  });

  it('a damaged event in a cleanly closed outbox is reported by the publisher (CORRUPT), which publishes nothing past it', async () => {
    const dataDir = tmpDir();
    await fill(dataDir, 50);
    const stored = readOutbox(evDirOf(dataDir, SYM), binaryCodec);
    const victim = stored[40] as { offset: number; msg: Event };
    damageRecord(evDirOf(dataDir, SYM), victim.offset);
    const bus = new MemoryBus({ retain: true });
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT, bus });
    try {
      const actor = engine.actor(SYM) as SymbolActor;
      expect(actor.outbox.log.trustedClean).toBe(true);
      const p = engine.publisherList[0];
      if (p === undefined) return expect.fail('no publisher');
      for (let i = 0; i < 200 && p.stats().lastError === undefined; i++) await new Promise((r) => setTimeout(r, 5));
      const e = p.stats().lastError;
      expect(e).toBeInstanceOf(WalError);
      expect((e as WalError).code).toBe('CORRUPT');
      const published = bus.messages(SYM).map((m) => m.eventSeq);
      const before = stored.slice(0, 40).filter((m) => m.msg.type !== 'cmdEnd').length;
      expect(published.length).toBeLessThanOrEqual(before);
      expect(published).toEqual(published.map((_, i) => i + 1));
    } finally {
      await engine.close().catch(() => undefined);
    }
  });
});
