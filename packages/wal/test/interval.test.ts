// Durability `interval` in a process with nothing else to do: awaiting durability must keep the
// process alive until the timer's sync makes the record durable.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTmpDirs, tmpDir } from './helpers.js';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/interval-child.mjs', import.meta.url));

afterAll(removeTmpDirs);

describe('durability interval', () => {
  it('keeps the process alive until what was written is durable', () => {
    if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run \`pnpm build\` first`);
    const dir = tmpDir();
    const p = spawnSync(process.execPath, [CHILD, dir], { encoding: 'utf8', timeout: 20_000 });
    expect(p.stderr).toBe('');
    expect(p.status).toBe(0);
    expect(p.stdout).toBe('durable 16\n');
  });
});
