// Creating a directory and its missing parents, as `fs.mkdirSync(dir, { recursive: true })` does,
// but never for ever: on Node 20, under a file system that answers ENOENT to a mkdir whose parent
// exists (procfs: `/proc/x`), the recursive form retries without end and the process spins.

import fs from 'node:fs';
import path from 'node:path';

/** Creates `dir` and its missing parents; throws the system error (ENOENT, EACCES, ENOTDIR, ...) when it cannot. */
export function makeDirectory(dir: string): void {
  // The path as given, not resolved: `..` after a symbolic link is the link's parent, as the
  // system reads it (path.resolve would take it as text).
  if (dir === '') throw Object.assign(new Error("ENOENT: no such file or directory, mkdir ''"), { code: 'ENOENT', syscall: 'mkdir', path: '' });
  if (tryMkdir(dir)) return;
  const parent = path.dirname(dir);
  if (parent === dir) return; // the root (or '.') exists
  makeDirectory(parent);
  // Once: an ENOENT now (its parent exists) is the file system's answer, not a missing parent.
  tryMkdir(dir, true);
}

/** True once `dir` exists as a directory; false if its parent is missing (unless `final`); throws otherwise. */
function tryMkdir(dir: string, final = false): boolean {
  try {
    fs.mkdirSync(dir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      if (fs.statSync(dir).isDirectory()) return true;
      throw err;
    }
    if (code === 'ENOENT' && !final) return false;
    throw err;
  }
}
