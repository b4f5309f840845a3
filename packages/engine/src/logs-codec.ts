// A symbol's logs keep the codec they were written with: read with the other one, the first record
// fails to decode and the open looked like a damaged log (RECOVERY_FAILED, "unknown version 123").
// The codec is told from the first byte of the command log's first record (the outbox's when the
// command log holds none): `{` for JSON, the binary version byte for the binary codec.

import { BINARY_VERSION, type CodecName } from '@gx3/codecs';
import { listSegments, WalReader, WalRecord, type FileIO } from '@gx3/wal';
import { EngineError } from './errors.js';

const JSON_FIRST = 0x7b; // '{'

/** The codec the first record of the log in `dir` was written with; undefined if there is none or it tells neither. */
function codecOfLog(io: FileIO, dir: string): CodecName | undefined {
  try {
    if (listSegments(io, dir).length === 0) return undefined;
    const reader = new WalReader(dir, { io });
    try {
      const r = reader.next(new WalRecord());
      if (r === null || r.end <= r.start) return undefined;
      const first = r.buf[r.start];
      return first === JSON_FIRST ? 'json' : first === BINARY_VERSION ? 'binary' : undefined;
    } finally {
      reader.close();
    }
  } catch {
    // A log that cannot be read here is reported by the recovery itself.
    return undefined;
  }
}

/** INVALID_CONFIG (option `codec`) if the symbol's logs were written with another codec than `codec`. */
export function checkLogsCodec(symbol: string, io: FileIO, cmdDir: string, evDir: string, codec: CodecName): void {
  const written = codecOfLog(io, cmdDir) ?? codecOfLog(io, evDir);
  if (written === undefined || written === codec) return;
  throw new EngineError(
    'INVALID_CONFIG',
    `${symbol}'s logs were written with the ${written} codec, not ${codec}: open the data directory with codec ${written} (a data directory keeps the codec its logs were written with)`,
    { option: 'codec' },
  );
}
