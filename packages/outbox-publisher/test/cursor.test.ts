// The publisher's cursor file: round trip (blocking and asynchronous writes), atomic replacement,
// every kind of corruption reported as CURSOR_CORRUPT with a recovery in the message, a missing
// file meaning the start of the outbox, and I/O errors as CURSOR_IO.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { CURSOR_FILE, EventOutbox, MemoryBus, Publisher, readCursor, writeCursor, writeCursorAsync, type CursorState } from '../src/index.js';
import { expectOutboxError, removeTmpDirs, thrownBy, tmpDir, trade } from './helpers.js';

afterAll(removeTmpDirs);

const SIZE = 40;
const MAGIC = 0x47583343;

function cursorFile(dir: string): string {
  return path.join(dir, CURSOR_FILE);
}

/** A cursor file's bytes built independently of the source, from the documented layout. */
function encodeCursor(offset: bigint, lastEventSeq: bigint, commits: bigint, version = 1): Buffer {
  const b = Buffer.alloc(SIZE);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(version, 4);
  b.writeBigUInt64LE(offset, 8);
  b.writeBigUInt64LE(lastEventSeq, 16);
  b.writeBigUInt64LE(commits, 24);
  b.writeUInt32LE(zlib.crc32(b.subarray(0, 32)), 32);
  return b;
}

/** Asserts that reading the cursor of `dir` fails with CURSOR_CORRUPT, naming the file and a recovery. */
function expectCorrupt(dir: string, why?: RegExp): void {
  const e = expectOutboxError(thrownBy(() => readCursor(dir)), 'CURSOR_CORRUPT');
  expect(e.message).toContain(cursorFile(dir));
  expect(e.message).toMatch(/recovery/i);
  expect(e.message).toMatch(/delete/i);
  expect(e.message).toContain('writeCursor');
  if (why) expect(e.message).toMatch(why);
}

describe('cursor', () => {
  it('a missing cursor file means the start of the outbox', () => {
    expect(readCursor(tmpDir())).toEqual({ offset: 0, lastEventSeq: 0, commits: 0 });
  });

  it('round-trips through writeCursor and writeCursorAsync, including values beyond 32 bits', async () => {
    const dir = tmpDir();
    const states: CursorState[] = [
      { offset: 0, lastEventSeq: 0, commits: 0 },
      { offset: 4096, lastEventSeq: 17, commits: 1 },
      { offset: 2 ** 32 + 8, lastEventSeq: 2 ** 40 + 3, commits: 2 ** 33 },
      { offset: Number.MAX_SAFE_INTEGER, lastEventSeq: Number.MAX_SAFE_INTEGER - 1, commits: 5 },
    ];
    for (const s of states) {
      writeCursor(dir, s);
      expect(readCursor(dir)).toEqual(s);
      await writeCursorAsync(dir, { ...s, commits: s.commits + 1 });
      expect(readCursor(dir)).toEqual({ ...s, commits: s.commits + 1 });
    }
  });

  it('writes the documented 40-byte little-endian layout', () => {
    const dir = tmpDir();
    writeCursor(dir, { offset: 2 ** 32 + 5, lastEventSeq: 9, commits: 3 });
    expect(fs.readFileSync(cursorFile(dir))).toEqual(encodeCursor(2n ** 32n + 5n, 9n, 3n));
    // And reads a file built from the layout alone.
    fs.writeFileSync(cursorFile(dir), encodeCursor(123n, 45n, 6n));
    expect(readCursor(dir)).toEqual({ offset: 123, lastEventSeq: 45, commits: 6 });
  });

  it('replaces the cursor atomically: a new file by rename, no temporary file left, a stale temporary file ignored', async () => {
    const dir = tmpDir();
    writeCursor(dir, { offset: 100, lastEventSeq: 1, commits: 1 });
    const before = fs.statSync(cursorFile(dir)).ino;
    writeCursor(dir, { offset: 200, lastEventSeq: 2, commits: 2 });
    const after = fs.statSync(cursorFile(dir)).ino;
    expect(after).not.toBe(before); // renamed over, not rewritten in place
    expect(fs.readdirSync(dir)).toEqual([CURSOR_FILE]);
    await writeCursorAsync(dir, { offset: 300, lastEventSeq: 3, commits: 3 });
    expect(fs.statSync(cursorFile(dir)).ino).not.toBe(after);
    expect(fs.readdirSync(dir)).toEqual([CURSOR_FILE]);

    // A crash in the middle of a write leaves a torn temporary file: the cursor is the old one,
    // and the next write replaces the temporary file.
    fs.writeFileSync(`${cursorFile(dir)}.tmp`, Buffer.from([1, 2, 3]));
    expect(readCursor(dir)).toEqual({ offset: 300, lastEventSeq: 3, commits: 3 });
    writeCursor(dir, { offset: 400, lastEventSeq: 4, commits: 4 });
    expect(readCursor(dir)).toEqual({ offset: 400, lastEventSeq: 4, commits: 4 });
    expect(fs.readdirSync(dir)).toEqual([CURSOR_FILE]);
  });

  it('readers during many replacements only ever see a whole old or new cursor', async () => {
    const dir = tmpDir();
    writeCursor(dir, { offset: 0, lastEventSeq: 0, commits: 0 });
    let stop = false;
    let reads = 0;
    const reader = (async () => {
      while (!stop) {
        const s = readCursor(dir); // throws CURSOR_CORRUPT on a torn file
        expect(s.offset).toBe(s.commits * 8);
        expect(s.lastEventSeq).toBe(s.commits);
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 1; i <= 100; i++) await writeCursorAsync(dir, { offset: i * 8, lastEventSeq: i, commits: i });
    stop = true;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(readCursor(dir)).toEqual({ offset: 800, lastEventSeq: 100, commits: 100 });
  });

  describe('corruption gives CURSOR_CORRUPT with a recovery', () => {
    const good = encodeCursor(4096n, 12n, 3n);

    it('an empty file', () => {
      const dir = tmpDir();
      fs.writeFileSync(cursorFile(dir), Buffer.alloc(0));
      expectCorrupt(dir, /0 bytes/);
    });

    it('a truncated file, at every length', () => {
      const dir = tmpDir();
      for (let len = 1; len < SIZE; len++) {
        fs.writeFileSync(cursorFile(dir), good.subarray(0, len));
        expectCorrupt(dir, new RegExp(`${len} bytes`));
      }
    });

    it('a file with bytes appended', () => {
      const dir = tmpDir();
      fs.writeFileSync(cursorFile(dir), Buffer.concat([good, Buffer.from([0])]));
      expectCorrupt(dir, /41 bytes/);
    });

    it('a bad magic number (with a valid checksum)', () => {
      const dir = tmpDir();
      const b = Buffer.from(good);
      b.writeUInt32LE(0x12345678, 0);
      b.writeUInt32LE(zlib.crc32(b.subarray(0, 32)), 32);
      fs.writeFileSync(cursorFile(dir), b);
      expectCorrupt(dir, /magic/);
    });

    it('an unknown version (with a valid checksum)', () => {
      const dir = tmpDir();
      for (const v of [0, 2, 0xffff]) {
        fs.writeFileSync(cursorFile(dir), encodeCursor(4096n, 12n, 3n, v));
        expectCorrupt(dir, /version/);
      }
    });

    it('a field beyond the safe integer range (with a valid checksum)', () => {
      const dir = tmpDir();
      fs.writeFileSync(cursorFile(dir), encodeCursor(2n ** 53n, 1n, 1n));
      expectCorrupt(dir, /safe integer/);
      fs.writeFileSync(cursorFile(dir), encodeCursor(1n, 2n ** 64n - 1n, 1n));
      expectCorrupt(dir, /safe integer/);
      fs.writeFileSync(cursorFile(dir), encodeCursor(1n, 1n, 2n ** 60n));
      expectCorrupt(dir, /safe integer/);
    });

    it('a wrong checksum', () => {
      const dir = tmpDir();
      const b = Buffer.from(good);
      b.writeUInt32LE((b.readUInt32LE(32) ^ 1) >>> 0, 32);
      fs.writeFileSync(cursorFile(dir), b);
      expectCorrupt(dir, /checksum/);
    });

    it('zeros in place of the cursor (a torn write of a preallocated file)', () => {
      const dir = tmpDir();
      fs.writeFileSync(cursorFile(dir), Buffer.alloc(SIZE));
      expectCorrupt(dir);
    });

    it('any single flipped bit of the checked fields (bytes 0..35)', () => {
      const dir = tmpDir();
      for (let byte = 0; byte < 36; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const b = Buffer.from(good);
          b[byte] = (b[byte] ?? 0) ^ (1 << bit);
          fs.writeFileSync(cursorFile(dir), b);
          expectCorrupt(dir);
        }
      }
    });

    it('any single flipped bit of the trailing reserved field (bytes 36..39, documented as 0)', () => {
      const dir = tmpDir();
      const undetected: string[] = [];
      for (let byte = 36; byte < SIZE; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const b = Buffer.from(good);
          b[byte] = (b[byte] ?? 0) ^ (1 << bit);
          fs.writeFileSync(cursorFile(dir), b);
          try {
            readCursor(dir);
            undetected.push(`byte ${byte} bit ${bit}`);
          } catch (err) {
            expectOutboxError(err, 'CURSOR_CORRUPT');
          }
        }
      }
      expect(undetected, 'flipped bits read as a valid cursor').toEqual([]);
    });

    it('the recovery the message gives works: deleting the file restarts from 0, writeCursor sets a known-good offset', () => {
      const dir = tmpDir();
      fs.writeFileSync(cursorFile(dir), Buffer.from('garbage'));
      expectCorrupt(dir);
      writeCursor(dir, { offset: 64, lastEventSeq: 2, commits: 0 });
      expect(readCursor(dir)).toEqual({ offset: 64, lastEventSeq: 2, commits: 0 });
      fs.writeFileSync(cursorFile(dir), Buffer.from('garbage'));
      fs.rmSync(cursorFile(dir));
      expect(readCursor(dir).offset).toBe(0);
    });

    it('a publisher refuses to start on a corrupt cursor', async () => {
      const dir = tmpDir();
      const outbox = EventOutbox.open(dir, { durability: 'none' });
      try {
        fs.writeFileSync(cursorFile(dir), good.subarray(0, 20));
        const p = new Publisher({ dir, bus: new MemoryBus(), outbox });
        expectOutboxError(thrownBy(() => { p.start(); }), 'CURSOR_CORRUPT');
        expect(p.stats().running).toBe(false);
      } finally {
        await outbox.close();
      }
    });
  });

  describe('version 2: the history id of the outbox the offset is in', () => {
    const HISTORY = '0123456789abcdef0123456789abcdef';

    /** A version 2 cursor's bytes built from the documented layout. */
    function encodeV2(offset: bigint, lastEventSeq: bigint, commits: bigint, history: string): Buffer {
      const b = Buffer.alloc(56);
      b.writeUInt32LE(MAGIC, 0);
      b.writeUInt16LE(2, 4);
      b.writeBigUInt64LE(offset, 8);
      b.writeBigUInt64LE(lastEventSeq, 16);
      b.writeBigUInt64LE(commits, 24);
      b.write(history, 32, 'hex');
      b.writeUInt32LE(zlib.crc32(b.subarray(0, 48)), 48);
      return b;
    }

    it('writes the documented 56-byte layout when the state has a history, and reads it back', async () => {
      const dir = tmpDir();
      writeCursor(dir, { offset: 2 ** 32 + 5, lastEventSeq: 9, commits: 3, history: HISTORY });
      expect(fs.readFileSync(cursorFile(dir))).toEqual(encodeV2(2n ** 32n + 5n, 9n, 3n, HISTORY));
      expect(readCursor(dir)).toEqual({ offset: 2 ** 32 + 5, lastEventSeq: 9, commits: 3, history: HISTORY });
      await writeCursorAsync(dir, { offset: 8, lastEventSeq: 1, commits: 4, history: HISTORY });
      expect(readCursor(dir)).toEqual({ offset: 8, lastEventSeq: 1, commits: 4, history: HISTORY });
    });

    it('detects any single flipped bit, a version that does not match the size, and a bad history id to write', () => {
      const dir = tmpDir();
      const good = encodeV2(4096n, 12n, 3n, HISTORY);
      for (let byte = 0; byte < 56; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const b = Buffer.from(good);
          b[byte] = (b[byte] ?? 0) ^ (1 << bit);
          fs.writeFileSync(cursorFile(dir), b);
          expectCorrupt(dir);
        }
      }
      const v1In56 = Buffer.from(good);
      v1In56.writeUInt16LE(1, 4);
      v1In56.writeUInt32LE(zlib.crc32(v1In56.subarray(0, 48)), 48);
      fs.writeFileSync(cursorFile(dir), v1In56);
      expectCorrupt(dir, /version 1 in a file of 56 bytes/);
      expectOutboxError(thrownBy(() => { writeCursor(dir, { offset: 0, lastEventSeq: 0, commits: 0, history: 'not-hex' }); }), 'CURSOR_IO');
    });

    it('a publisher writes its outbox history into the cursor it commits', async () => {
      const dir = tmpDir();
      const outbox = EventOutbox.open(dir, { durability: 'none' });
      const p = new Publisher({ dir, bus: new MemoryBus(), outbox, commitIntervalMs: 1 });
      try {
        outbox.append(trade('S', 1, 1));
        outbox.appendCmdEnd('S', 1, 1, 0, 1);
        await outbox.sync();
        p.start();
        await p.acknowledged(outbox.durableOffset);
        await p.stop();
        expect(readCursor(dir)).toMatchObject({ offset: outbox.durableOffset, lastEventSeq: 1, history: outbox.history });
      } finally {
        await p.stop();
        await outbox.close();
      }
    });

    it('a publisher refuses to start on a cursor past the end of its outbox (CURSOR_AHEAD), saying how to recover', async () => {
      const dir = tmpDir();
      const outbox = EventOutbox.open(dir, { durability: 'none' });
      try {
        writeCursor(dir, { offset: 4096, lastEventSeq: 12, commits: 3 });
        const p = new Publisher({ dir, bus: new MemoryBus(), outbox });
        const e = expectOutboxError(thrownBy(() => { p.start(); }), 'CURSOR_AHEAD');
        expect(e.message).toMatch(/offset 4096.*past the end.*delete the cursor/i);
        expect(p.stats().running).toBe(false);
      } finally {
        await outbox.close();
      }
    });
  });

  describe('I/O errors give CURSOR_IO', () => {
    it('when the cursor cannot be read (a directory in its place)', () => {
      const dir = tmpDir();
      fs.mkdirSync(cursorFile(dir));
      const e = expectOutboxError(thrownBy(() => readCursor(dir)), 'CURSOR_IO');
      expect(e.message).toContain(cursorFile(dir));
      expect(e.cause).toBeInstanceOf(Error);
    });

    it('when the cursor cannot be written (missing directory), blocking and asynchronous', async () => {
      const dir = path.join(tmpDir(), 'missing');
      const s = { offset: 8, lastEventSeq: 1, commits: 1 };
      expectOutboxError(thrownBy(() => { writeCursor(dir, s); }), 'CURSOR_IO');
      let err: unknown;
      try {
        await writeCursorAsync(dir, s);
      } catch (e) {
        err = e;
      }
      expectOutboxError(err, 'CURSOR_IO');
    });
  });
});
