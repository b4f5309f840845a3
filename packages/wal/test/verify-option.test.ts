// The reader's verifyChecksums option: off, a record whose payload no longer matches its CRC is
// returned as it is (the caller vouches for the bytes); on (the default), it is corruption.
import { afterAll, describe, expect, it } from 'vitest';
import { WalError, WalReader, WalWriter } from '../src/index.js';
import { appendAt, lastSegment, payloadFor, removeTmpDirs, segmentFiles, SMALL, tmpDir, writeAt } from './helpers.js';

afterAll(removeTmpDirs);

describe('WalReader verifyChecksums', () => {
  it('skips the CRC check only when told to', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'none' });
    const offsets = [0, 1, 2].map((i) => appendAt(w, payloadFor(i)));
    await w.close();
    // Flip one payload byte of the middle record.
    const seg = lastSegment(dir);
    const at = (offsets[1] as number) + 8;
    const original = payloadFor(1);
    writeAt(seg.file, at, Buffer.from([(original[0] as number) ^ 0xff]));

    const lenient = new WalReader(dir, { maxRecordSize: SMALL.maxRecordSize, verifyChecksums: false });
    const got: Buffer[] = [];
    for (let r = lenient.next(); r; r = lenient.next()) got.push(r.payload());
    lenient.close();
    expect(got).toHaveLength(3);
    expect(got[1]?.[0]).toBe((original[0] as number) ^ 0xff);

    const strict = new WalReader(dir, { maxRecordSize: SMALL.maxRecordSize });
    expect(strict.next()?.offset).toBe(offsets[0]);
    let err: unknown;
    try {
      strict.next();
    } catch (e) {
      err = e;
    }
    strict.close();
    expect(err).toBeInstanceOf(WalError);
    expect((err as WalError).code).toBe('CORRUPT');
  });
});

describe('WalReader verifiedFrom and WalWriter.verifiedFrom / tailRecordOffset', () => {
  it('checks CRCs below verifiedFrom and not at or past it', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'none' });
    const offsets = Array.from({ length: 60 }, (_, i) => appendAt(w, payloadFor(i)));
    await w.close();
    const reopened = WalWriter.open(dir, { ...SMALL, durability: 'none' });
    const from = reopened.verifiedFrom;
    expect(from).toBeGreaterThan(0); // the last segment's base: several segments were written
    expect(reopened.tailRecordOffset).toBe(offsets[offsets.length - 1]);
    reopened.closeSync();
    // Corrupt a payload byte of the last record (in the verified last segment) and of the first record.
    const last = offsets[offsets.length - 1] as number;
    const seg = lastSegment(dir);
    const lastPayload = payloadFor(offsets.length - 1);
    writeAt(seg.file, last - from + 8, Buffer.from([(lastPayload[0] as number) ^ 0xff]));
    const trusting = new WalReader(dir, { maxRecordSize: SMALL.maxRecordSize, verifiedFrom: from });
    let n = 0;
    for (let r = trusting.next(); r; r = trusting.next()) n++;
    trusting.close();
    expect(n).toBe(offsets.length);
    // The same reader still checks the records below `from`.
    const firstFile = segmentFiles(dir)[0]?.file as string;
    writeAt(firstFile, 8, Buffer.from([(payloadFor(0)[0] as number) ^ 0xff]));
    const r2 = new WalReader(dir, { maxRecordSize: SMALL.maxRecordSize, verifiedFrom: from });
    let err: unknown;
    try {
      r2.next();
    } catch (e) {
      err = e;
    }
    r2.close();
    expect(err).toBeInstanceOf(WalError);
    expect((err as WalError).code).toBe('CORRUPT');
  });

  it('an empty log has no tail record', () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'none' });
    expect(w.tailRecordOffset).toBe(-1);
    expect(w.verifiedFrom).toBe(0);
    w.closeSync();
  });
});
