// Readers (before the log exists, across a cut tail, bounded by end()), the writer between reserve()
// and commit() and around close()/abort(), truncation that must refuse, logs missing their first
// segments, and crashes at every file operation (the first kinds failed on the code before their fixes).
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFileIO, repairLog, truncateLog, verifyLog, WalReader, WalWriter, type FileIO } from '../src/index.js';
import {
  appendAt,
  drain,
  expectCode,
  expectRecords,
  HEADER,
  lastSegment,
  layout,
  MAX,
  noSyncIO,
  nonZeroBytes,
  payloadFor,
  readAll,
  removeTmpDirs,
  runWal,
  segmentFiles,
  SMALL,
  snapshot,
  tmpDir,
  WAL_CLI,
  walErrorOf,
  writeAt,
} from './helpers.js';

afterEach(removeTmpDirs);

async function makeLog(dir: string, count: number, options: Partial<Parameters<typeof WalWriter.open>[1]> = {}): Promise<{ payloads: Buffer[]; offsets: number[]; end: number }> {
  const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO, ...options });
  const payloads = Array.from({ length: count }, (_, i) => payloadFor(i));
  const offsets = payloads.map((p) => appendAt(w, p));
  const end = w.nextOffset;
  await w.close();
  return { payloads, offsets, end };
}

describe('reader', () => {
  it('a reader made before the log exists, from an offset in a later segment, reads from that offset once the log is written', async () => {
    const dir = path.join(tmpDir(), 'log');
    // Where the records will be: the same payloads, laid out by a writer with the same options.
    const probe = tmpDir();
    const { payloads, offsets } = await makeLog(probe, 60);
    const segs = segmentFiles(probe);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    const k = offsets.findIndex((o) => o > (segs[2]?.base ?? 0));
    expect(k).toBeGreaterThan(0);

    const r = new WalReader(dir, { maxRecordSize: MAX, from: offsets[k] as number });
    expect(r.next()).toBeNull(); // no log yet
    await makeLog(dir, 60);
    try {
      expectRecords(drain(r), payloads.slice(k), offsets.slice(k));
    } finally {
      r.close();
    }
  });

  it('a reader that stopped at a torn tail returns no phantom records after the tail is cut (truncated) by a reopening writer', async () => {
    const dir = tmpDir();
    const first = Buffer.from('first');
    const w = WalWriter.open(dir, { ...SMALL, durability: 'none', io: noSyncIO });
    const payloads = [first, payloadFor(0), payloadFor(1), payloadFor(2)];
    const offsets = payloads.map((p) => appendAt(w, p));
    const end = w.nextOffset;
    await w.close();
    // A crash left 100 bytes of an incomplete record at the end of the (not preallocated) segment.
    fs.appendFileSync(lastSegment(dir).file, nonZeroBytes(100, 3));

    const r = new WalReader(dir, { maxRecordSize: MAX });
    try {
      expectRecords(drain(r), payloads, offsets); // stops quietly at the torn tail
      // The writer restarts: it cuts the torn tail off (by truncation: the segment is not preallocated).
      const again = WalWriter.open(dir, { ...SMALL, durability: 'none', io: noSyncIO });
      expect(again.repaired?.offset).toBe(end);
      expect(fs.statSync(lastSegment(dir).file).size).toBe(end);
      // Nothing is in the log after `end`: the reader must not return anything.
      expect(drain(r)).toEqual([]);
      // And once the writer appends, the reader returns that record at `end`.
      appendAt(again, Buffer.from('after restart'));
      again.flush();
      expectRecords(drain(r), [Buffer.from('after restart')], [end]);
      await again.close();
    } finally {
      r.close();
    }
  });

  it('a reader bounded by end() does not stop silently below end() at a zeroed header (cleanly closed segment, trusted reopen)', async () => {
    const dir = tmpDir();
    const opts = { ...SMALL, durability: 'batch' as const, io: noSyncIO, cleanClose: true };
    const { offsets } = await makeLog(dir, 3, opts);
    // Damage inside the cleanly closed segment: the header of the middle record reads as zeros.
    writeAt(lastSegment(dir).file, offsets[1] ?? -1, Buffer.alloc(HEADER));
    const w = WalWriter.open(dir, opts);
    expect(w.trustedClean).toBe(true);
    appendAt(w, Buffer.from('acknowledged'));
    await w.sync();
    const r = new WalReader(dir, { maxRecordSize: MAX, end: () => w.durableOffset });
    try {
      // README: a cleanly closed segment's damage "is found by the reader, which checks every CRC".
      // Returning null at offset[1] while end() is far beyond silently hides every durable record after it.
      let err: unknown;
      const got: number[] = [];
      try {
        for (let rec = r.next(); rec !== null; rec = r.next()) got.push(rec.offset);
      } catch (e) {
        err = e;
      }
      if (err === undefined) expect.fail(`reader returned records at ${JSON.stringify(got)} then null at ${r.offset}, below end() = ${w.durableOffset}, without an error`);
      expectCode(err as never, 'CORRUPT');
    } finally {
      r.close();
      await w.close();
    }
    expect(verifyLog(dir, { maxRecordSize: MAX }).status).toBe('corrupt');
  });

  it('reads across every segment boundary from every record offset exactly once (preallocated and not)', async () => {
    for (const preallocate of [true, false]) {
      const dir = tmpDir();
      const { payloads, offsets } = await makeLog(dir, 70, { preallocate });
      expect(segmentFiles(dir).length).toBeGreaterThanOrEqual(3);
      for (const k of [0, 1, 29, 30, 31, 69]) expectRecords(readAll(dir, { from: offsets[k] as number }), payloads.slice(k), offsets.slice(k));
    }
  });

  it('a follower bounded by durableOffset gets every record once while the writer appends, syncs and rolls', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO });
    const r = new WalReader(dir, { maxRecordSize: MAX, end: () => w.durableOffset });
    const payloads: Buffer[] = [];
    const got: { offset: number; payload: Buffer }[] = [];
    for (let i = 0; i < 120; i++) {
      const p = payloadFor(i);
      payloads.push(p);
      w.append(p);
      if (i % 5 === 4) await w.sync();
      if (i % 3 === 0) got.push(...drain(r));
    }
    await w.sync();
    got.push(...drain(r));
    r.close();
    await w.close();
    expect(segmentFiles(dir).length).toBeGreaterThan(3);
    expectRecords(got, payloads, layout(payloads));
  });
});

describe('writer', () => {
  it('flush() between reserve() and commit() (as the interval timer may do) does not change the committed payload', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO });
    const a = Buffer.from('record A, buffered before the reservation');
    appendAt(w, a);
    const payload = Buffer.from('payload encoded in place');
    const at = w.reserve(64);
    payload.copy(w.buffer, at);
    w.flush(); // e.g. the interval timer's sync() while the encoder awaits
    w.commit(payload.length);
    await w.close();
    expectRecords(readAll(dir), [a, payload], layout([a, payload]));
  });

  it('commit() refuses a length that is not an integer, and the writer and its buffered records survive', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO });
    const before = [payloadFor(0), payloadFor(1)];
    for (const p of before) appendAt(w, p);
    const at = w.reserve(10);
    w.buffer.fill(7, at, at + 10);
    let refused = false;
    try {
      w.commit(2.5);
    } catch {
      refused = true;
    }
    expect(refused, 'commit(2.5) was accepted').toBe(true);
    await w.close(); // flushes and syncs the buffered records
    expect(w.failure).toBeUndefined();
    expectRecords(readAll(dir), before, layout(before));
  });

  it('close() followed by abort() (an owner that fails while closing) resolves without closing a file twice', async () => {
    const dir = tmpDir();
    const closes: number[] = [];
    const io: FileIO = {
      ...noSyncIO,
      close: (fd) => {
        closes.push(fd);
        nodeFileIO.close(fd);
      },
    };
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io });
    appendAt(w, payloadFor(0));
    const closing = w.close();
    w.abort();
    await expect(closing).resolves.toBeUndefined();
    expect(new Set(closes).size, `fds closed: ${JSON.stringify(closes)}`).toBe(closes.length);
  });

  it('lastOffset, nextOffset and segment names stay right across rolls triggered by reserve() with a smaller commit', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO });
    const payloads: Buffer[] = [];
    for (let i = 0; i < 80; i++) {
      const p = payloadFor(i);
      const expected = w.nextOffset;
      const at = w.reserve(MAX);
      p.copy(w.buffer, at);
      w.commit(p.length);
      payloads.push(p);
      // a roll on reserve(MAX) may move the record to the next segment's base
      const segBase = segmentFiles(dir).at(-1)?.base ?? -1;
      expect(w.lastOffset === expected || w.lastOffset === segBase).toBe(true);
      expect(w.nextOffset).toBe(w.lastOffset + HEADER + p.length);
    }
    await w.close();
    const records = readAll(dir);
    expect(records.map((r) => r.payload)).toEqual(payloads);
    const segs = segmentFiles(dir);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    // every segment is named where the previous one's data ends
    expect(verifyLog(dir, { maxRecordSize: MAX }).status).toBe('ok');
  });
});

/**
 * A file layer that "crashes the process" at its `limit`-th mutating call: that call and every later
 * one fail (so nothing more reaches the files), as after a SIGKILL (the page cache is kept).
 */
function crashingIO(limit: number): { io: FileIO; crashed: () => boolean } {
  let n = 0;
  let dead = false;
  const crash = (): Error => Object.assign(new Error('crashed'), { code: 'EIO' });
  const step = (): void => {
    if (dead) throw crash();
    if (n++ >= limit) {
      dead = true;
      throw crash();
    }
  };
  const io: FileIO = {
    ...nodeFileIO,
    open: (p, flags) => {
      if (flags !== 'r') step();
      return nodeFileIO.open(p, flags);
    },
    write: (fd, b, o, l, pos) => {
      step();
      return nodeFileIO.write(fd, b, o, l, pos);
    },
    truncate: (fd, l) => {
      step();
      nodeFileIO.truncate(fd, l);
    },
    rename: (a, b) => {
      step();
      nodeFileIO.rename(a, b);
    },
    remove: (p) => {
      step();
      nodeFileIO.remove(p);
    },
    syncSync: () => {
      if (dead) throw crash();
    },
    sync: (_fd, done) => {
      setImmediate(() => {
        done(dead ? crash() : null);
      });
    },
    syncDir: () => {
      if (dead) throw crash();
    },
    preallocate: (p, size, done) => {
      try {
        step();
      } catch (e) {
        setImmediate(() => {
          done(e as Error);
        });
        return;
      }
      // Made synchronously (then reported asynchronously): no file appears in the directory later,
      // behind the back of the reopening writer, and runs are deterministic.
      let err: Error | null = null;
      try {
        fs.writeFileSync(p, Buffer.alloc(size), { flag: 'wx' });
      } catch (e) {
        err = e as Error;
      }
      setImmediate(() => {
        done(dead ? crash() : err);
      });
    },
  };
  return { io, crashed: () => dead };
}

describe('crash at every file operation', () => {
  for (const cleanClose of [false, true]) {
    for (const durability of ['batch', 'none'] as const) {
      it(`${durability}, cleanClose ${String(cleanClose)}: reopening keeps every acknowledged record, in order, at its offset`, async () => {
        const payloads = Array.from({ length: 70 }, (_, i) => payloadFor(i));
        const offsets = layout(payloads);
        const problems: string[] = [];
        let completed = false;
        for (let limit = 0; limit < 400 && !completed; limit++) {
          const dir = tmpDir();
          const c = crashingIO(limit);
          let acked = 0;
          let appended = 0;
          try {
            for (let round = 0; round < 2; round++) {
              const w = WalWriter.open(dir, { ...SMALL, durability, cleanClose, io: c.io });
              for (let i = 0; i < 35; i++) {
                w.append(payloads[appended] ?? Buffer.alloc(1));
                appended++;
                if (appended % 4 === 0) {
                  await w.sync();
                  acked = appended;
                }
              }
              await w.close();
              acked = appended;
            }
          } catch {
            // the "process" died here
          }
          if (!c.crashed()) completed = true;
          try {
            const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', cleanClose, io: noSyncIO });
            const next = w.nextOffset;
            await w.close();
            const got = readAll(dir);
            const k = got.length;
            const v = verifyLog(dir, { maxRecordSize: MAX });
            const same = got.every((r, i) => r.offset === offsets[i] && r.payload.equals(payloads[i] ?? Buffer.alloc(0)));
            if (k < acked || k > appended || next !== offsets[k] || v.status !== 'ok' || !same) {
              problems.push(`crash at op ${limit}: acked ${acked}, appended ${appended}, read ${k}, next ${next}, verify ${v.status}`);
            }
          } catch (e) {
            problems.push(`crash at op ${limit}: reopen failed: ${(e as Error).message}`);
          }
        }
        expect(completed, 'the workload ran to its end within the limit').toBe(true);
        expect(problems).toEqual([]);
      });
    }
  }
});

describe('verify, truncate, repair', () => {
  it('verifyLog reports a log whose first segment is missing as corrupt (the reader cannot read it from 0)', async () => {
    const dir = tmpDir();
    await makeLog(dir, 60);
    const segs = segmentFiles(dir);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    fs.rmSync(segs[0]?.file ?? '');
    const v = verifyLog(dir, { maxRecordSize: MAX });
    expect(v.status).toBe('corrupt');
    // The reader from offset 0 reports it as a WalError (not a RangeError from a negative read position).
    expectCode(
      walErrorOf(() => readAll(dir)),
      'CORRUPT',
    );
  });

  it('truncateLog that refuses (offset beyond the valid data of its segment) leaves every segment in place', async () => {
    const dir = tmpDir();
    const { offsets } = await makeLog(dir, 60);
    const segs = segmentFiles(dir);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    // Damage record 3 of the first segment, then ask for a cut at record 5 (past the damage).
    writeAt(segs[0]?.file ?? '', offsets[3] ?? -1, Buffer.from([0xff, 0xff, 0, 0]));
    const before = snapshot(dir);
    const err = walErrorOf(() => truncateLog(dir, offsets[5] ?? -1, { maxRecordSize: MAX }));
    expectCode(err, 'CORRUPT');
    expect([...snapshot(dir).keys()]).toEqual([...before.keys()]);
    expect(segmentFiles(dir).length).toBe(segs.length);
  });

  it('truncateLog refuses an offset inside a record instead of leaving half a record (which the next open cuts off whole)', async () => {
    const dir = tmpDir();
    const { payloads, offsets } = await makeLog(dir, 3);
    const inside = (offsets[1] ?? -1) + 3;
    let refused = false;
    try {
      truncateLog(dir, inside, { maxRecordSize: MAX });
    } catch {
      refused = true;
    }
    if (!refused) {
      // It cut: then the log must still be a whole number of records.
      expect(verifyLog(dir, { maxRecordSize: MAX }).status, 'log left with a partial record').toBe('ok');
    }
    expectRecords(readAll(dir).slice(0, 1), payloads.slice(0, 1), offsets.slice(0, 1));
  });

  it('truncateLog at a segment boundary and at a record boundary: the reopened writer continues at the cut', async () => {
    for (const preallocate of [true, false]) {
      const dir = tmpDir();
      const { payloads, offsets } = await makeLog(dir, 70, { preallocate });
      const segs = segmentFiles(dir);
      const boundary = segs[1]?.base ?? -1;
      const kb = offsets.indexOf(boundary);
      expect(kb).toBeGreaterThan(0);
      truncateLog(dir, boundary, { maxRecordSize: MAX, io: noSyncIO });
      expect(segmentFiles(dir).length).toBe(1);
      expectRecords(readAll(dir), payloads.slice(0, kb), offsets.slice(0, kb));
      truncateLog(dir, offsets[5] ?? -1, { maxRecordSize: MAX, io: noSyncIO });
      const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate, io: noSyncIO });
      expect(w.repaired).toBeUndefined();
      expect(w.nextOffset).toBe(offsets[5]);
      const more = payloads.slice(5, 60);
      for (const p of more) appendAt(w, p);
      await w.close();
      expectRecords(readAll(dir), payloads.slice(0, 60), layout(payloads.slice(0, 60)));
      expect(verifyLog(dir, { maxRecordSize: MAX }).status).toBe('ok');
    }
  });

  it('repairLog cuts a torn tail in the last of several segments; reopen and append continue at the cut', async () => {
    const dir = tmpDir();
    const { payloads, offsets, end } = await makeLog(dir, 50);
    const last = lastSegment(dir);
    writeAt(last.file, end - last.base, nonZeroBytes(30, 5));
    expect(verifyLog(dir, { maxRecordSize: MAX })).toMatchObject({ status: 'torn-tail', offset: end });
    const { sideFile } = repairLog(dir, { maxRecordSize: MAX });
    expect(sideFile && fs.readFileSync(sideFile).equals(nonZeroBytes(30, 5))).toBe(true);
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO });
    expect(w.repaired).toBeUndefined();
    expect(w.nextOffset).toBe(end);
    appendAt(w, Buffer.from('x'));
    await w.close();
    expectRecords(readAll(dir), [...payloads, Buffer.from('x')], [...offsets, end]);
  });
});

describe.skipIf(!fs.existsSync(WAL_CLI))('wal CLI', () => {
  it('verify, dump and repair of a multi-segment log with a torn tail: statuses, offsets, exit codes', async () => {
    const dir = tmpDir();
    const { payloads, offsets, end } = await makeLog(dir, 50);
    const last = lastSegment(dir);
    writeAt(last.file, end - last.base, nonZeroBytes(20, 1));
    let r = runWal('verify', dir, '--max-record', String(MAX));
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ records: 50, bytes: end, status: 'torn-tail', offset: end });
    r = runWal('dump', dir, '--max-record', String(MAX));
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBe(50);
    expect(lines.map((l) => Number(l.split(' ')[0]))).toEqual(offsets);
    expect(lines[7]?.split(' ')[3]).toBe(payloads[7]?.toString('hex'));
    // one segment file, not the first: offsets are log offsets
    r = runWal('dump', segmentFiles(dir)[1]?.file ?? '', '--max-record', String(MAX));
    expect(r.status).toBe(0);
    expect(Number(r.stdout.split(' ')[0])).toBe(segmentFiles(dir)[1]?.base);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.wal-dump-'))).toEqual([]);
    r = runWal('repair', dir, '--max-record', String(MAX));
    expect(r.status).toBe(0);
    expect(runWal('verify', dir, '--max-record', String(MAX)).status).toBe(0);
  });

  it('verify of a log whose first segment is missing does not say ok', async () => {
    const dir = tmpDir();
    await makeLog(dir, 60);
    fs.rmSync(segmentFiles(dir)[0]?.file ?? '');
    const r = runWal('verify', dir, '--max-record', String(MAX));
    expect(r.stdout).not.toMatch(/"status":"ok"/);
    expect(r.status).toBe(2);
  });
});
