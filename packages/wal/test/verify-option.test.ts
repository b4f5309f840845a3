// The reader's verifyChecksums option: off, a record whose payload no longer matches its CRC is
// returned as it is (the caller vouches for the bytes); on (the default), it is corruption.
import { afterAll, describe, expect, it } from 'vitest';
import { WalError, WalReader, WalWriter } from '../src/index.js';
import { appendAt, lastSegment, payloadFor, removeTmpDirs, SMALL, tmpDir, writeAt } from './helpers.js';

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
