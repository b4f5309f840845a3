// The command-line tool, built to dist/bin/wal.js:
//   node dist/bin/wal.js verify|dump|repair PATH [--codec json|binary] [--max-record N]
// verify prints JSON {records, bytes, status, offset?} and exits 0 (ok), 1 (torn tail) or 2 (corrupt);
// dump prints one line per record (offset, length, CRC in hex, payload in hex); repair cuts a torn
// tail and refuses a corrupt log with exit status 2, leaving it untouched.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { WalWriter } from '../src/index.js';
import {
  appendAt,
  type CliRun,
  expectRecords,
  expectSameSnapshot,
  flipBit,
  frameRecord,
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
  segmentFileName,
  segmentFiles,
  SMALL,
  snapshot,
  tmpDir,
  trimZeros,
  WAL_CLI,
  writeAt,
} from './helpers.js';

const CLI = WAL_CLI;
const built = fs.existsSync(CLI);
if (!built) console.warn(`wal CLI tests skipped: ${CLI} does not exist (run \`pnpm build\` in packages/wal)`);

afterEach(removeTmpDirs);

const wal = runWal;
type Run = CliRun;

function json(run: Run): Record<string, unknown> {
  const text = run.stdout.trim();
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return expect.fail(`not JSON: ${JSON.stringify(run.stdout)} (stderr ${JSON.stringify(run.stderr)})`);
  }
}

async function makeLog(count: number): Promise<{ dir: string; payloads: Buffer[]; offsets: number[] }> {
  const dir = tmpDir();
  const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO });
  const payloads: Buffer[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = i === count - 1 ? nonZeroBytes(40, 9) : payloadFor(i);
    payloads.push(p);
    offsets.push(appendAt(w, p));
  }
  await w.close();
  return { dir, payloads, offsets };
}

/** Parses a dump line: offset, length, CRC (hex), payload (hex); tolerates `key=` prefixes and commas. */
function parseDumpLine(line: string): { offset: number; length: number; crc: number; hex: string } {
  const fields = line
    .trim()
    .split(/[\s,]+/)
    .map((f) => f.replace(/^[a-z]+[=:]/i, ''));
  const [offset, length, crc, hex] = fields;
  if (offset === undefined || length === undefined || crc === undefined || hex === undefined) return expect.fail(`bad dump line: ${line}`);
  return { offset: Number(offset), length: Number(length), crc: parseInt(crc.replace(/^0x/i, ''), 16), hex: hex.toLowerCase() };
}

describe.skipIf(!built)('wal CLI', () => {
  it('verify: ok log, as a directory and as one segment file; exit 0', async () => {
    const { dir, payloads } = await makeLog(50);
    const total = layout(payloads)[payloads.length];
    const r = wal('verify', dir);
    expect(r.status, r.stderr).toBe(0);
    const out = json(r);
    expect(out).toMatchObject({ records: 50, bytes: total, status: 'ok' });
    expect(out.offset).toBeUndefined();
    expect(json(wal('verify', dir, '--max-record', String(MAX)))).toMatchObject({ records: 50, status: 'ok' });

    const segs = segmentFiles(dir);
    expect(segs.length).toBeGreaterThan(1);
    const first = segs[0];
    if (first === undefined) throw new Error('no segment');
    const one = wal('verify', first.file);
    expect(one.status, one.stderr).toBe(0);
    expect(json(one)).toMatchObject({ status: 'ok', bytes: segs[1]?.base });
  });

  it('verify: torn tail, exit 1 with its offset', async () => {
    const { dir, payloads, offsets } = await makeLog(30);
    const seg = lastSegment(dir);
    const last = offsets[29] ?? -1;
    writeAt(seg.file, last - seg.base + HEADER + 10, Buffer.alloc(30));
    const r = wal('verify', dir);
    expect(r.status).toBe(1);
    expect(json(r)).toMatchObject({ status: 'torn-tail', offset: last, records: 29, bytes: last });
    expect(payloads.length).toBe(30);
  });

  it('verify: corruption, exit 2 with its offset', async () => {
    const { dir, offsets } = await makeLog(30);
    const seg = lastSegment(dir);
    const i = offsets.findIndex((o) => o >= seg.base) + 1;
    const at = offsets[i] ?? -1;
    flipBit(seg.file, at - seg.base + HEADER + 2, 3);
    const r = wal('verify', dir);
    expect(r.status).toBe(2);
    expect(json(r)).toMatchObject({ status: 'corrupt', offset: at, records: i });
  });

  it('dump: one line per record with offset, length, CRC and payload in hex', async () => {
    const { dir, payloads, offsets } = await makeLog(40);
    const r = wal('dump', dir);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBe(40);
    lines.forEach((line, i) => {
      const d = parseDumpLine(line);
      const p = payloads[i] ?? Buffer.alloc(0);
      expect(d, line).toEqual({ offset: offsets[i], length: p.length, crc: zlib.crc32(p), hex: p.toString('hex') });
    });

    // One segment file on its own: its records, at their log offsets.
    const seg = lastSegment(dir);
    const one = wal('dump', seg.file);
    expect(one.status, one.stderr).toBe(0);
    const inLast = offsets.filter((o) => o >= seg.base).length;
    const oneLines = one.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(oneLines.map((l) => parseDumpLine(l).offset)).toEqual(offsets.slice(40 - inLast));
  });

  it('dump: stops with an error at a corrupt record instead of skipping it', async () => {
    const { dir, offsets } = await makeLog(30);
    const seg = lastSegment(dir);
    const i = offsets.findIndex((o) => o >= seg.base) + 1;
    const at = offsets[i] ?? -1;
    flipBit(seg.file, at - seg.base + HEADER, 0);
    const r = wal('dump', dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/corrupt/i);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    expect(lines.map((l) => parseDumpLine(l).offset)).toEqual(offsets.slice(0, i));
  });

  it('repair: cuts a torn tail into a side file, after which the log verifies ok and accepts appends', async () => {
    const { dir, payloads, offsets } = await makeLog(30);
    const seg = lastSegment(dir);
    const last = offsets[29] ?? -1;
    writeAt(seg.file, last - seg.base + HEADER + 10, Buffer.alloc(30));
    const torn = Buffer.from(trimZeros(fs.readFileSync(seg.file).subarray(last - seg.base)));
    const before = new Set(fs.readdirSync(dir));
    const r = wal('repair', dir);
    expect(r.status, r.stderr).toBe(0);
    expect(() => json(r)).not.toThrow();
    const v = wal('verify', dir);
    expect(v.status).toBe(0);
    expect(json(v)).toMatchObject({ status: 'ok', records: 29, bytes: last });
    expectRecords(readAll(dir), payloads.slice(0, 29), offsets.slice(0, 29));
    const added = fs.readdirSync(dir).filter((n) => !before.has(n));
    expect(added.some((n) => fs.readFileSync(path.join(dir, n)).equals(torn)), `side file with the torn bytes among ${added.join(', ')}`).toBe(true);
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    expect(w.repaired).toBeUndefined();
    expect(appendAt(w, Buffer.from('next'))).toBe(last);
    await w.close();
  });

  it('repair: refuses a corrupt log with exit 2 and leaves every file untouched', async () => {
    const { dir, offsets } = await makeLog(30);
    const seg = lastSegment(dir);
    const i = offsets.findIndex((o) => o >= seg.base) + 1;
    flipBit(seg.file, (offsets[i] ?? -1) - seg.base + 5, 6);
    const before = snapshot(dir);
    const r = wal('repair', dir);
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).not.toBe('');
    expectSameSnapshot(snapshot(dir), before);
  });

  it('repair: an ok log is left as it is', async () => {
    const { dir } = await makeLog(20);
    const before = snapshot(dir);
    const r = wal('repair', dir);
    expect(r.status, r.stderr).toBe(0);
    expectSameSnapshot(snapshot(dir), before);
  });

  // What the tool must never do: modify a file that is not a log, or cut records whose CRCs are good.
  const record = frameRecord;
  const segName = segmentFileName;

  it('repair and verify refuse a file that is not a segment (exit 2), and leave it as it was', () => {
    const file = path.join(tmpDir(), 'notes.txt');
    const text = 'these are my notes, not a write-ahead log\n';
    fs.writeFileSync(file, text);
    for (const cmd of ['repair', 'verify']) {
      const r = wal(cmd, file);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/not a log segment/);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
  });

  it('repair of one segment file that later segments follow refuses a bad tail in it (corrupt), as repair of the directory does', () => {
    const d = tmpDir();
    const seg0 = Buffer.concat([record(Buffer.from('first record')), Buffer.from([1, 2, 3, 4, 5])]);
    const f0 = path.join(d, segName(0));
    fs.writeFileSync(f0, seg0);
    fs.writeFileSync(path.join(d, segName(seg0.length)), record(Buffer.from('second record')));
    expect(wal('repair', d).status).toBe(2);
    expect(json(wal('verify', f0))).toMatchObject({ status: 'corrupt' });
    const r = wal('repair', f0);
    expect(r.status).toBe(2);
    expect(fs.readFileSync(f0)).toEqual(seg0);
  });

  it('repair with a --max-record below the records refuses instead of cutting records whose CRCs are good', () => {
    const d = tmpDir();
    const seg = Buffer.concat([record(Buffer.alloc(100, 0x41)), record(Buffer.alloc(100, 0x42)), record(Buffer.alloc(100, 0x43))]);
    const f = path.join(d, segName(0));
    fs.writeFileSync(f, seg);
    expect(wal('verify', d).status).toBe(0);
    const r = wal('repair', d, '--max-record', '16');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/INVALID_OPTIONS.*raise maxRecordSize/);
    expect(fs.readFileSync(f)).toEqual(seg);
  });

  it('verify of a directory that holds no segment is an error (exit 2), not a healthy empty log', () => {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'SYM', 'cmd'), { recursive: true });
    const r = wal('verify', root);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/not a log: it holds no segment/);
  });

  it('usage errors exit non-zero with a message', () => {
    const none = wal();
    expect(none.status).not.toBe(0);
    expect(none.stderr).toMatch(/usage/i);
    const unknown = wal('frobnicate', tmpDir());
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr.trim()).not.toBe('');
    const missing = wal('verify', path.join(tmpDir(), 'nope'));
    expect(missing.status).not.toBe(0);
    expect(missing.stderr.trim()).not.toBe('');
  });

  it('verify with --max-record below the log\'s records: INVALID_OPTIONS (exit 2), not a torn tail (exit 1) that repair would then refuse', async () => {
    const { dir } = await makeLog(5);
    const r = wal('verify', dir, '--max-record', '10');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error \[INVALID_OPTIONS\]: .*records longer than maxRecordSize \(10 bytes\)/);
    const repair = wal('repair', dir, '--max-record', '10');
    expect(repair.status).toBe(2);
    expect(repair.stderr).toMatch(/INVALID_OPTIONS/);
    expect(json(wal('verify', dir))).toMatchObject({ records: 5, status: 'ok' });
  });

  it('--help (and -h) prints the usage on stdout, exit 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = wal(flag);
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
      expect(r.stdout).toMatch(/^usage: wal verify\|dump\|repair PATH/);
    }
  });
});
