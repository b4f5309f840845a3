// A symbol's event times never go back, even when the clock does: a timestamp the actor assigns
// (a command given with ts 0) is never below the latest one logged, in this run or (recovered from
// the command log) an earlier one. A command given its own ts keeps it; a clock that gives no
// number is still refused. And a command whose symbol reads differently while it is logged is refused.
import { codecByName } from '@gx3/codecs';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/index.js';
import { cancel, cmdDirOf, evDirOf, limit, readCommandLog, readOutbox, removeTmpDirs, tmpDir } from './helpers.js';

const SYM = 'TSX';
const codec = codecByName('binary');

afterAll(removeTmpDirs);

/** A clock that gives the listed values in turn, then the last one. */
function clockOf(values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] as number;
}

function times(dataDir: string): { commands: number[]; events: number[] } {
  return {
    commands: readCommandLog(cmdDirOf(dataDir, SYM), codec).map((r) => r.msg.ts),
    events: readOutbox(evDirOf(dataDir, SYM), codec).map((r) => r.msg.ts),
  };
}

describe('command timestamps', () => {
  it('do not go back when the clock does, in one run', async () => {
    const dir = tmpDir();
    const engine = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'batch', clock: clockOf([5_000, 7_000, 6_000, 3_000, 9_000, 8_000]) });
    try {
      const outcomes = [];
      for (let id = 1; id <= 6; id++) outcomes.push(await engine.submit(limit(SYM, id, 'buy', 100 + id, 1)));
      expect(outcomes.map((o) => o.events[0]?.ts)).toEqual([5_000, 7_000, 7_000, 7_000, 9_000, 9_000]);
    } finally {
      await engine.close();
    }
    const t = times(dir);
    expect(t.commands).toEqual([5_000, 7_000, 7_000, 7_000, 9_000, 9_000]);
    for (let i = 1; i < t.events.length; i++) expect(t.events[i]).toBeGreaterThanOrEqual(t.events[i - 1] as number);
  });

  it('do not go back across a restart whose clock is behind the last run (recovered from the command log)', async () => {
    const dir = tmpDir();
    const first = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'batch', clock: () => 1_000_000 });
    await first.submit(limit(SYM, 1, 'sell', 100, 5));
    await first.close();
    // The wall clock stepped back between the two runs.
    const second = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'batch', clock: clockOf([400_000, 1_200_000]) });
    try {
      const trade = await second.submit(limit(SYM, 2, 'buy', 100, 2));
      expect(trade.events.map((e) => e.ts)).toEqual(trade.events.map(() => 1_000_000));
      const later = await second.submit(cancel(SYM, 1));
      expect(later.events.every((e) => e.ts === 1_200_000)).toBe(true);
    } finally {
      await second.close();
    }
    expect(times(dir).commands).toEqual([1_000_000, 1_000_000, 1_200_000]);
  });

  it("keeps a timestamp the caller gives (it raises the floor of the ones the actor assigns), and refuses a command when the clock gives no number", async () => {
    const dir = tmpDir();
    const engine = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'batch', clock: clockOf([2_000, Number.NaN, 2_500]) });
    try {
      expect((await engine.submit(limit(SYM, 1, 'buy', 100, 1, { ts: 3_000 }))).events[0]?.ts).toBe(3_000);
      expect((await engine.submit(limit(SYM, 2, 'buy', 100, 1, { ts: 1_000 }))).events[0]?.ts).toBe(1_000);
      expect((await engine.submit(limit(SYM, 3, 'buy', 100, 1))).events[0]?.ts).toBe(3_000);
      await expect(engine.submit(limit(SYM, 4, 'buy', 100, 1))).rejects.toMatchObject({ code: 'INVALID_COMMAND' });
      expect((await engine.submit(limit(SYM, 5, 'buy', 100, 1))).events[0]?.ts).toBe(3_000);
    } finally {
      await engine.close();
    }
  });
});

describe('a command whose symbol reads differently while it is logged', () => {
  it('is refused (INVALID_COMMAND) and leaves nothing in the command log', async () => {
    const dir = tmpDir();
    const engine = await Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }, { symbol: 'OTHER' }], durability: 'batch' });
    try {
      const cmd = limit(SYM, 1, 'buy', 100, 1);
      let reads = 0;
      // The actor's routing check reads the actor's own symbol; the encoder then reads another.
      Object.defineProperty(cmd, 'symbol', { get: () => (reads++ === 0 ? SYM : 'OTHER'), enumerable: true });
      const actor = engine.actor(SYM);
      const r = actor?.trySubmit(cmd);
      expect(r).toMatchObject({ ok: false, code: 'INVALID_COMMAND' });
      expect(reads).toBe(2);
      expect(cmd.seq).toBe(0);
      // The next command gets seq 1: nothing was logged or taken.
      expect((await engine.submit(limit(SYM, 2, 'buy', 100, 1))).seq).toBe(1);
    } finally {
      await engine.close();
    }
    expect(readCommandLog(cmdDirOf(dir, SYM), codec).map((r) => r.msg.orderId)).toEqual([2]);
  });
});
