// replaceFileSync: the file's whole new content or its old one, never a mix; with `mode`, the
// permissions asked for even when a crashed earlier replace left its temporary file behind.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replaceFileSync } from '../src/index.js';
import { removeTmpDirs, tmpDir } from './helpers.js';

afterAll(removeTmpDirs);

describe('replaceFileSync', () => {
  it('replaces the content and leaves no temporary file', () => {
    const file = path.join(tmpDir(), 'state');
    replaceFileSync(file, 'one\n');
    replaceFileSync(file, new TextEncoder().encode('two\n'));
    expect(fs.readFileSync(file, 'utf8')).toBe('two\n');
    expect(fs.readdirSync(path.dirname(file))).toEqual(['state']);
  });

  it('gives the file the mode asked for, though a leftover temporary had another', () => {
    const file = path.join(tmpDir(), 'secret');
    fs.writeFileSync(`${file}.tmp`, 'half-written by a crashed replace', { mode: 0o644 });
    replaceFileSync(file, 'key\n', { mode: 0o600 });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8')).toBe('key\n');
  });

  it('throws the file system error and leaves the old content when the directory is gone', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'state');
    replaceFileSync(file, 'old\n');
    expect(() => { replaceFileSync(path.join(dir, 'missing', 'state'), 'new\n'); }).toThrow(/ENOENT/);
    expect(fs.readFileSync(file, 'utf8')).toBe('old\n');
  });
});
