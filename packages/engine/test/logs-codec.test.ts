// A symbol's logs keep the codec they were written with: an open with the other codec is refused
// as a configuration error naming both (INVALID_CONFIG, option `codec`), before anything is read or
// written, and the logs are left as they were; an empty symbol takes either. And EngineError.option
// names the option an INVALID_CONFIG is about.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, EngineError } from '../src/index.js';
import { limit, removeTmpDirs, tmpDir } from './helpers.js';

const SYM = 'CDC';

afterAll(removeTmpDirs);

/** Every file under `dir` with its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) out[f] = fs.readFileSync(p).toString('base64');
  }
  return out;
}

describe('the codec of a data directory', () => {
  it.each([
    ['json', 'binary'],
    ['binary', 'json'],
  ] as const)('written with %s, opened with %s: INVALID_CONFIG naming both, the logs untouched; opened with the first codec again, as before', async (written, other) => {
    const dir = tmpDir();
    const first = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'batch', codec: written });
    await first.submit(limit(SYM, 1, 'buy', 100, 3));
    await first.close();
    const before = snapshot(dir);
    let caught: unknown;
    try {
      await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'batch', codec: other });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EngineError);
    expect(caught).toMatchObject({ code: 'INVALID_CONFIG', option: 'codec' });
    expect((caught as Error).message).toContain(`${SYM}'s logs were written with the ${written} codec, not ${other}`);
    // Nothing read as another codec's records, nothing written (the lock file aside).
    const after = snapshot(dir);
    delete after.LOCK;
    delete before.LOCK;
    expect(after).toEqual(before);
    const again = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'batch', codec: written });
    try {
      expect(again.actor(SYM)?.book.getOrder(1)?.qty).toBe(3);
    } finally {
      await again.close();
    }
  });

  it('a symbol with empty logs takes either codec', async () => {
    const dir = tmpDir();
    await (await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'batch', codec: 'json' })).close();
    const e = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'batch', codec: 'binary' });
    try {
      expect((await e.submit(limit(SYM, 1, 'sell', 100, 1))).events.map((x) => x.type)).toEqual(['accepted', 'added']);
    } finally {
      await e.close();
    }
  });
});

describe('EngineError.option', () => {
  it('names segmentSize for a segment size no log can use (an engine option, not a symbol\'s name or limits)', async () => {
    const err = await Engine.open({ dataDir: tmpDir(), symbols: [{ symbol: 'A' }], segmentSize: 100 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: 'INVALID_CONFIG', option: 'segmentSize' });
  });

  it('names dataDir, mailboxSize and durability for theirs, and nothing for a symbol\'s limits', async () => {
    const fail = (o: Partial<Parameters<typeof Engine.open>[0]>): Promise<unknown> =>
      Engine.open({ dataDir: tmpDir(), symbols: [{ symbol: 'A' }], ...o }).then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(await fail({ mailboxSize: 0 })).toMatchObject({ code: 'INVALID_CONFIG', option: 'mailboxSize' });
    expect(await fail({ durability: 'sometimes' as never })).toMatchObject({ code: 'INVALID_CONFIG', option: 'durability' });
    const limits = (await fail({ symbols: [{ symbol: 'A', minPrice: 10, maxPrice: 5 }] })) as EngineError;
    expect(limits).toMatchObject({ code: 'INVALID_CONFIG' });
    expect(limits.option).toBeUndefined();
  });
});
