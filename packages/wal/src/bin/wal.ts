#!/usr/bin/env node
// pnpm -s wal verify|dump|repair PATH [--codec json|binary] [--max-record BYTES]
//
//   verify  prints {records, bytes, status: "ok" | "torn-tail" | "corrupt", offset?} as JSON;
//           exit status 0, 1 or 2 respectively
//   dump    one line per record: offset, length, CRC (hex), payload as hex or, with --codec, decoded
//   repair  cuts a torn tail as opening the log for append would (keeping the bytes in a side
//           file); refuses to touch a corrupt log (exit 2)
//
// PATH is a log directory or one segment file. Errors are one line on stderr (`error [CODE]: ...`),
// exit status 2.
import { parseArgs } from 'node:util';
import { codecByName, type Codec } from '@gx3/codecs';
import { WalError } from '../errors.js';
import { WalReader, WalRecord } from '../reader.js';
import { segmentName } from '../segments.js';
import { repairLog, verifyLog } from '../verify.js';
import fs from 'node:fs';
import path from 'node:path';

const USAGE = 'usage: wal verify|dump|repair PATH [--codec json|binary] [--max-record BYTES]   (wal --help: this line)';

/** One line `error [CODE]: message` (as the other gx3 command lines write), exit status 2. */
function fail(message: string, code = 'BAD_ARGUMENT'): never {
  process.stderr.write(`error [${code}]: ${message}\n`);
  process.exit(2);
}

// A reader that goes away (`wal dump LOG | head`) ends the dump quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  fail(err.message, 'IO');
});

function main(): void {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { codec: { type: 'string' }, 'max-record': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  if (parsed.values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const [command, target, ...rest] = parsed.positionals;
  if (command === undefined || target === undefined || rest.length > 0) fail(USAGE);
  const maxArg = parsed.values['max-record'];
  const maxRecordSize = maxArg === undefined ? 1 << 20 : Number(maxArg);
  if (!Number.isSafeInteger(maxRecordSize) || maxRecordSize < 1) fail(`--max-record must be a positive integer, got ${maxArg ?? ''}`);
  if (!fs.existsSync(target)) fail(`no such file or directory: ${target}`, 'IO');

  switch (command) {
    case 'verify': {
      const r = verifyLog(target, { maxRecordSize });
      const out: Record<string, unknown> = { records: r.records, bytes: r.bytes, status: r.status };
      if (r.offset !== undefined) out.offset = r.offset;
      if (r.file !== undefined) out.file = r.file;
      if (r.detail !== undefined) out.detail = r.detail;
      process.stdout.write(JSON.stringify(out) + '\n');
      process.exitCode = r.status === 'ok' ? 0 : r.status === 'torn-tail' ? 1 : 2;
      return;
    }
    case 'dump': {
      let codec: Codec | undefined;
      if (parsed.values.codec !== undefined) {
        try {
          codec = codecByName(parsed.values.codec);
        } catch (err) {
          fail((err as Error).message);
        }
      }
      // Checked first, as verify checks it: a file that is not a segment, a directory without
      // segments are refused; a corrupt log is dumped up to the corruption, then reported (exit 2).
      const check = verifyLog(target, { maxRecordSize });
      dump(target, maxRecordSize, codec);
      if (check.status === 'corrupt') fail(`${target}: ${check.detail ?? 'corrupt'} at log offset ${check.offset ?? '?'}${check.file === undefined ? '' : ` (${check.file})`}`, 'CORRUPT');
      return;
    }
    case 'repair': {
      const { before, sideFile } = repairLog(target, { maxRecordSize });
      const out: Record<string, unknown> = { status: before.status === 'ok' ? 'ok' : 'repaired', records: before.records, bytes: before.bytes };
      if (before.offset !== undefined) out.offset = before.offset;
      if (sideFile !== undefined) out.sideFile = sideFile;
      process.stdout.write(JSON.stringify(out) + '\n');
      return;
    }
    default:
      fail(`unknown command ${command}\n${USAGE}`);
  }
}

function dump(target: string, maxRecordSize: number, codec: Codec | undefined): void {
  const single = fs.statSync(target).isFile();
  // A single segment file is read as a log of its own, from its first byte.
  const dir = single ? fs.mkdtempSync(path.join(fs.realpathSync(path.dirname(target)), '.wal-dump-')) : target;
  try {
    const base = single ? Number(/^(\d{20})\.wal$/.exec(path.basename(target))?.[1] ?? 0) : 0;
    if (single) fs.symlinkSync(path.resolve(target), path.join(dir, segmentName(base)));
    const reader = new WalReader(dir, { maxRecordSize, from: base });
    const rec = new WalRecord();
    const lines: string[] = [];
    const emit = (): void => {
      if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
      lines.length = 0;
    };
    try {
      while (reader.next(rec)) {
        const bytes = rec.buf.subarray(rec.start, rec.end);
        const crc = rec.buf.readUInt32LE(rec.start - 4).toString(16).padStart(8, '0');
        let body: string;
        if (codec) {
          try {
            body = JSON.stringify(codec.decode(bytes));
          } catch (err) {
            body = `undecodable (${(err as Error).message}): ${bytes.toString('hex')}`;
          }
        } else {
          body = bytes.toString('hex');
        }
        lines.push(`${rec.offset} ${rec.length} ${crc} ${body}`);
        if (lines.length >= 1000) emit();
      }
    } finally {
      emit();
      reader.close();
    }
  } finally {
    if (single) fs.rmSync(dir, { recursive: true, force: true });
  }
}

try {
  main();
} catch (err) {
  if (err instanceof WalError) fail(err.message, err.code);
  // Any other error (a directory named like a segment, a permission denied): one line, not a stack trace.
  fail((err as Error).message, 'IO');
}
