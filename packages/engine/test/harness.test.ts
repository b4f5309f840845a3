// The test harness itself, held to the shared tools it ports: generateWorkload() writes what gen.mjs
// writes, byte for byte, and RefModel's summary is what ref.mjs prints (the crash test trusts both).
// Then the engine against the model on a workload with every operation, without ../shared.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { binaryCodec } from '@gx3/codecs';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, type SymbolActor } from '../src/index.js';
import {
  commandFromLine,
  evDirOf,
  GEN_MJS,
  generateWorkload,
  HAVE_SHARED,
  REF_MJS,
  RefModel,
  removeTmpDirs,
  SEGMENT,
  summaryFromOutbox,
  tmpDir,
  warnIfNoShared,
} from './helpers.js';

afterEach(removeTmpDirs);

function nodeStdout(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      err += s;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`node ${args.join(' ')} exited ${String(code)}: ${err}`));
    });
  });
}

const MIX = [40, 25, 10, 5, 5, 5, 5, 5];

warnIfNoShared('the comparison of the test harness with gen.mjs and ref.mjs');

describe.skipIf(!HAVE_SHARED)('the harness against gen.mjs and ref.mjs', () => {
  it('generateWorkload() is gen.mjs, and RefModel is ref.mjs', async () => {
    const args = ['--ops', '30000', '--prefill', '500', '--seed', '11', '--mix', MIX.join(',')];
    const theirs = await nodeStdout([GEN_MJS, ...args]);
    const ours = generateWorkload({ ops: 30_000, prefill: 500, seed: 11, mix: MIX });
    expect(ours.join('\n') + '\n').toBe(theirs);

    const file = path.join(tmpDir(), 'w.csv');
    fs.writeFileSync(file, theirs);
    const expected: unknown = JSON.parse(await nodeStdout([REF_MJS, file]));
    const model = new RefModel();
    for (const line of ours) model.apply(line);
    expect(model.summary()).toEqual(expected);
    // Prefixes too (the crash test compares prefixes).
    const prefix = ours.slice(0, 12_345);
    fs.writeFileSync(file, prefix.join('\n') + '\n');
    const expectedPrefix: unknown = JSON.parse(await nodeStdout([REF_MJS, file]));
    const m2 = new RefModel();
    for (const line of prefix) m2.apply(line);
    expect(m2.summary()).toEqual(expectedPrefix);
  });
});

describe('the engine against the reference model', () => {
  it('agrees on a workload with every operation type, live and after recovery', async () => {
    const lines = generateWorkload({ ops: 40_000, prefill: 1_000, seed: 5, mix: MIX });
    const model = new RefModel();
    for (const line of lines) model.apply(line);
    const expected = model.summary();

    const dataDir = tmpDir();
    const options = { dataDir, symbols: [{ symbol: 'REF' }], durability: 'none' as const, segmentSize: SEGMENT };
    const engine = await Engine.open(options);
    const outcomes = await Promise.all(lines.map((line, i) => engine.submit(commandFromLine('REF', line, i))));
    await engine.close();
    expect(outcomes.map((o) => o.seq)).toEqual(lines.map((_l, i) => i + 1));
    const actor = engine.actor('REF') as SymbolActor;
    const live = summaryFromOutbox(evDirOf(dataDir, 'REF'), binaryCodec, actor.book, lines.length);
    expect(live.problem).toBeUndefined();
    expect(live.summary).toEqual(expected);

    const again = await Engine.open(options);
    const recovered = again.actor('REF') as SymbolActor;
    await again.close();
    const after = summaryFromOutbox(evDirOf(dataDir, 'REF'), binaryCodec, recovered.book, recovered.recovery.commands);
    expect(after.summary).toEqual(expected);
  });
});
