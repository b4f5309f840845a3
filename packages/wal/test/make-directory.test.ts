// makeDirectory: `mkdir -p` that always ends. On Node 20, fs.mkdirSync(dir, { recursive: true })
// under procfs (`/proc/x`: mkdir answers ENOENT although the parent exists) retries for ever.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDirectory } from '../src/index.js';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const made: string[] = [];
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gx3-mkdir-'));
  made.push(d);
  return d;
}

describe('makeDirectory', () => {
  it('creates the directory and its missing parents; an existing directory is fine', () => {
    const root = tmp();
    const dir = path.join(root, 'a', 'b', 'c');
    makeDirectory(dir);
    expect(fs.statSync(dir).isDirectory()).toBe(true);
    makeDirectory(dir);
    makeDirectory(root);
    expect(fs.readdirSync(path.join(root, 'a'))).toEqual(['b']);
  });

  it('a file in the way is EEXIST (or ENOTDIR below it), as mkdir -p says', () => {
    const root = tmp();
    const file = path.join(root, 'f');
    fs.writeFileSync(file, 'x');
    expect(() => {
      makeDirectory(file);
    }).toThrow(expect.objectContaining({ code: 'EEXIST' }) as Error);
    expect(() => {
      makeDirectory(path.join(file, 'below'));
    }).toThrow(expect.objectContaining({ code: 'ENOTDIR' }) as Error);
  });

  // In a child process: a regression spins for ever, which no test timeout can interrupt in-process.
  it.skipIf(!fs.existsSync('/proc/self/stat') || !fs.existsSync(DIST))('under /proc it fails at once with ENOENT instead of spinning', () => {
    const script = `import { makeDirectory } from ${JSON.stringify(pathToFileURL(DIST).href)};
try { makeDirectory('/proc/gx3-make-directory-${process.pid}/data'); console.log('made'); } catch (err) { console.log(err.code); }`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(r.signal, 'the child was killed: it did not end').toBeNull();
    expect(r.stdout.trim()).toBe('ENOENT');
  });
});
