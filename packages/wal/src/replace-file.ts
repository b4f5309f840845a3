// Replacing a small file durably: the data goes to `<file>.tmp`, is fsync'ed, renamed over the
// file, and the directory is fsync'ed, so that a crash leaves the old file or the new one, never a
// mix and never neither. Used for the small state files kept beside the logs (a publisher's cursor,
// an outbox's history id, a symbol's limits).

import fs from 'node:fs';
import path from 'node:path';

/**
 * Writes `data` to `file` atomically and durably (blocking); throws the file system's error. With
 * `mode`, the file gets those permissions (a secret's 0o600), whatever a leftover temporary had.
 */
export function replaceFileSync(file: string, data: Uint8Array | string, options: { mode?: number } = {}): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', options.mode ?? 0o666);
  try {
    if (options.mode !== undefined) fs.fchmodSync(fd, options.mode);
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}
