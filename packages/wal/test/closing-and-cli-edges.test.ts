// The log at its edges: appends while close() runs, a reopen with a maxRecordSize below the log's
// records, and the CLI's dump and error reporting on things that are not logs.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WalError, WalWriter } from '../src/index.js';
import { expectSameSnapshot, frameRecord, noSyncIO, readAll, removeTmpDirs, runWal, segmentFileName, snapshot, tmpDir, WAL_CLI } from './helpers.js';

afterEach(removeTmpDirs);

describe('WalWriter', () => {
  it('an append made after close() was called is either refused (CLOSED) or written: never accepted and silently dropped', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { segmentSize: 4096, maxRecordSize: 256, durability: 'batch', io: noSyncIO });
    w.append(Buffer.from('one'));
    const closing = w.close();
    let refused = false;
    try {
      w.append(Buffer.from('two'));
    } catch (err) {
      refused = err instanceof WalError && err.code === 'CLOSED';
    }
    await closing;
    const payloads = readAll(dir).map((r) => r.payload.toString());
    expect(payloads[0]).toBe('one');
    // Either the writer refused the append, or it kept it.
    expect(refused || payloads.includes('two'), `append accepted during close() and lost; log holds ${JSON.stringify(payloads)}`).toBe(true);
  });

  it('reopening a log with a maxRecordSize below its records refuses (as repair does) instead of cutting records whose CRCs are good', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { segmentSize: 4096, maxRecordSize: 256, durability: 'batch', io: noSyncIO });
    for (let i = 0; i < 3; i++) w.append(Buffer.alloc(200, 0x41 + i));
    await w.sync();
    await w.close();
    try {
      const w2 = WalWriter.open(dir, { segmentSize: 4096, maxRecordSize: 100, durability: 'batch', io: noSyncIO });
      await w2.close();
    } catch {
      // refusing is the expected outcome
    }
    // Every synced record must still be in the log.
    expect(readAll(dir).length).toBe(3);
  });
});

const CLI = WAL_CLI;
const wal = runWal;
const record = frameRecord;
const segName = segmentFileName;

describe.skipIf(!fs.existsSync(CLI))('wal CLI', () => {
  it('dump refuses a file that is not named <20 digits>.wal (exit 2), as verify and repair do, and leaves its directory as it was', () => {
    const d = tmpDir();
    const file = path.join(d, 'notes.txt');
    // Content that frames as one valid record: dump prints it as if it were a log.
    fs.writeFileSync(file, record(Buffer.from('these are my notes, not a write-ahead log')));
    const before = snapshot(d);
    const r = wal('dump', file);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/not a log segment/);
    expectSameSnapshot(snapshot(d), before);
  });

  it('dump of a directory that holds no segment is an error (exit 2), as verify is', () => {
    const d = tmpDir();
    expect(wal('verify', d).status).toBe(2);
    const r = wal('dump', d);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not a log/);
  });

  it('dump of one segment file that later segments follow reports a bad tail in it as corruption (exit 2), as verify does', () => {
    const d = tmpDir();
    const seg0 = Buffer.concat([record(Buffer.from('first record')), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9])]);
    const f0 = path.join(d, segName(0));
    fs.writeFileSync(f0, seg0);
    fs.writeFileSync(path.join(d, segName(seg0.length)), record(Buffer.from('second record')));
    expect(wal('verify', f0).status).toBe(2);
    const r = wal('dump', f0);
    expect(r.status).toBe(2);
  });

  it('verify, dump and repair of a log holding a non-file named like a segment fail with a one-line error (exit 2), not a stack trace', () => {
    const d = tmpDir();
    fs.writeFileSync(path.join(d, segName(0)), record(Buffer.from('first record')));
    fs.mkdirSync(path.join(d, segName(20)));
    for (const cmd of ['verify', 'dump', 'repair']) {
      const r = wal(cmd, d);
      expect(r.status, cmd).toBe(2);
      expect(r.stderr, cmd).toMatch(/^error \[[A-Z_]+\]: /);
      expect(r.stderr, cmd).not.toMatch(/\n\s+at /);
    }
  });
});
