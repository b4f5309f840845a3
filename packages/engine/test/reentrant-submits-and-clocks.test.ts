// A review of today's engine changes (69a0295..HEAD): the command checks of enqueue (a command
// that is not an object, one whose seq or ts cannot be written), the clock option, the WAL's
// "one reservation at a time" rule as the actor meets it, the non-reentrant durable notification
// (`notifyDurable`), a throwing onListenerError, and processed waiters at a halt.
//
// The BUG tests fail on the current code and pass once the bug is fixed; the others guard
// behaviour that is right today.
import path from 'node:path';
import type { Command } from '@gx3/codecs';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, EngineError, type EngineOptions, type SymbolActor } from '../src/index.js';
import { accepted, FaultyIO, limit, refused, removeTmpDirs, SEGMENT, tmpDir, Tracked, turns } from './helpers.js';

afterEach(removeTmpDirs);

const A = 'AAA';

function open(options: Partial<EngineOptions> = {}): Promise<Engine> {
  return Engine.open({ dataDir: tmpDir(), symbols: [{ symbol: A }], segmentSize: SEGMENT, durability: 'batch', ...options });
}

function actorOf(engine: Engine): SymbolActor {
  const a = engine.actor(A);
  if (a === undefined) throw new Error('no actor');
  return a;
}

function attempt<T>(f: () => T): { value: T } | { threw: unknown } {
  try {
    return { value: f() };
  } catch (threw) {
    return { threw };
  }
}

async function settle(p: Promise<unknown>): Promise<unknown> {
  try {
    return await p;
  } catch (err) {
    return err;
  }
}

// ---------------------------------------------------------------------------------------------
// Bugs

describe('a command whose field getter submits another command of the same symbol while it is being encoded: the nested one is refused, nothing halts', () => {
  // enqueue (symbol-actor.ts) reserves room in the command log, then the codec reads the caller's
  // object (its getters run) before commit(). A getter that calls trySubmit on the same symbol
  // re-enters enqueue, whose reserve() is now refused (writer.ts: "reserve() while a record is
  // reserved", INVALID_OPTIONS); enqueue treats every reserve() failure as an I/O error and halts
  // the actor ("halted after an I/O error"). The outer command is then committed and put in the
  // mailbox after the halt emptied it: trySubmit returns its seq, and submit()'s promise never
  // settles, not even after close(). Observed: halted "reserve(161) while a record is reserved",
  // the outer submit pending after close().
  it('the actor does not halt, the outer submit() settles, and the symbol takes the next command', async () => {
    const engine = await open();
    const actor = actorOf(engine);
    const outer = limit(A, 1, 'buy', 100, 1, { ts: 1 });
    let inner: unknown;
    Object.defineProperty(outer, 'price', {
      enumerable: true,
      configurable: true,
      get() {
        if (inner === undefined) inner = attempt(() => engine.trySubmit(limit(A, 2, 'buy', 100, 1, { ts: 1 })));
        return 100;
      },
    });
    const sub = new Tracked(engine.submit(outer));
    await turns(3);
    const halted = actor.halted?.message;
    const next = halted === undefined ? await settle(engine.submit(limit(A, 3, 'buy', 100, 1, { ts: 1 }))) : undefined;
    await settle(engine.close());
    await turns(1);
    expect(inner, 'the nested trySubmit threw').toHaveProperty('value');
    expect(halted, 'a bad command object halted the symbol').toBeUndefined();
    expect(sub.state, 'the outer submit() never settled').not.toBe('pending');
    if (sub.state === 'rejected') expect(sub.error).toBeInstanceOf(EngineError);
    expect(next).toHaveProperty('seq');
  });
});

describe('a clock that submits a command (re-entrantly): the nested one is refused, no two commands share a seq', () => {
  // enqueue computes `seq = lastSeq + 1` before it calls the clock (for a command with ts 0). A
  // clock that submits runs a whole enqueue in between (taking that seq); the outer command then
  // takes the same seq. Both are logged as seq 1, and the data directory can no longer be opened:
  // RECOVERY_FAILED "the outbox holds events up to 4 after command 1, but replaying the command log
  // gives 2: the logs do not belong together".
  it('every command taken has its own seq, and the data directory opens again', async () => {
    const dataDir = tmpDir();
    let inner: number | { code: string } | undefined;
    const engine: Engine = await Engine.open({
      dataDir,
      symbols: [{ symbol: A }],
      segmentSize: SEGMENT,
      durability: 'batch',
      clock: () => {
        if (inner === undefined && engine !== undefined) inner = engine.trySubmit(limit(A, 2, 'buy', 100, 1, { ts: 5 }));
        return 10;
      },
    });
    const outer = await settle(engine.submit(limit(A, 1, 'buy', 100, 1, { ts: 0 })));
    await engine.close();
    const outerSeq = outer instanceof Error ? undefined : (outer as { seq: number }).seq;
    const taken = [typeof inner === 'number' ? inner : undefined, outerSeq].filter((s): s is number => s !== undefined);
    expect(new Set(taken).size, `seqs taken: ${taken.join(', ')}`).toBe(taken.length);
    const again = await settle(Engine.open({ dataDir, symbols: [{ symbol: A }], segmentSize: SEGMENT, durability: 'batch' }));
    expect(again, `reopening failed: ${String(again)}`).toBeInstanceOf(Engine);
    const reopened = again as Engine;
    try {
      expect(reopened.actor(A)?.lastSubmittedSeq).toBe(taken.length);
    } finally {
      await reopened.close();
    }
  });
});

describe('a clock that throws: a typed refusal (trySubmit) or EngineError (submit), not the error the clock threw', () => {
  // Before the fix: enqueue called `this.clock()` outside any try: the clock's exception leaves trySubmit (which
  // must return a seq or a typed refusal) and submit() rejects with the clock's plain Error, not an
  // EngineError. The option check added today (typeof clock === 'function') also lets a class
  // through, whose every call throws "Class constructor ... cannot be invoked without 'new'".
  const clocks: [string, () => number][] = [
    [
      'a function that throws',
      () => {
        throw new Error('clock broke');
      },
    ],
    [
      'a class',
      class Clock {
        readonly unit = 'us';
      } as unknown as () => number,
    ],
  ];
  it.each(clocks)('%s: INVALID_CONFIG at open, or a typed refusal per command; commands with a ts of their own still go through', async (_what, clock) => {
    const opened = await settle(open({ clock }));
    if (opened instanceof EngineError) {
      expect(opened.code).toBe('INVALID_CONFIG');
      return;
    }
    const engine = opened as Engine;
    try {
      const r = attempt(() => engine.trySubmit(limit(A, 1, 'buy', 100, 1, { ts: 0 })));
      const s = attempt(() => engine.submit(limit(A, 2, 'buy', 100, 1, { ts: 0 })));
      const rejection = 'value' in s ? await settle(s.value) : s.threw;
      expect(r, `trySubmit threw ${String((r as { threw?: unknown }).threw)}`).toHaveProperty('value');
      expect(refused((r as { value: ReturnType<Engine['trySubmit']> }).value).ok).toBe(false);
      expect(rejection).toBeInstanceOf(EngineError);
      expect(actorOf(engine).halted).toBeUndefined();
      expect((await engine.submit(limit(A, 3, 'buy', 100, 1, { ts: 7 }))).seq).toBe(1);
    } finally {
      await engine.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Guards of what is right today

describe('a command whose ts cannot be written (seq can) is refused and left as it was given', () => {
  it('INVALID_COMMAND, its seq back to the given value, no seq used; the next command is seq 1', async () => {
    const engine = await open();
    try {
      const cmd = limit(A, 1, 'buy', 100, 1, { ts: 0 });
      Object.defineProperty(cmd, 'ts', { value: 0, writable: false, enumerable: true });
      const r = attempt(() => engine.trySubmit(cmd));
      expect(r).toHaveProperty('value');
      expect(refused((r as { value: ReturnType<Engine['trySubmit']> }).value).code).toBe('INVALID_COMMAND');
      expect(cmd.seq).toBe(0);
      expect(cmd.ts).toBe(0);
      await expect(engine.submit(cmd)).rejects.toMatchObject({ code: 'INVALID_COMMAND' });
      expect(cmd.seq).toBe(0);
      expect(accepted(engine.trySubmit(limit(A, 2, 'buy', 100, 1, { ts: 3 })))).toBe(1);
      await actorOf(engine).waitForDurable(1);
    } finally {
      await engine.close();
    }
  });

  it('a number, a string and a function are INVALID_COMMAND refusals (trySubmit) and EngineError rejections (submit)', async () => {
    const engine = await open();
    try {
      for (const bad of [42, 'limit', () => undefined] as unknown[]) {
        const r = attempt(() => engine.trySubmit(bad as Command));
        expect(r).toHaveProperty('value');
        expect(refused((r as { value: ReturnType<Engine['trySubmit']> }).value).code).toBe('INVALID_COMMAND');
        await expect(engine.submit(bad as Command)).rejects.toMatchObject({ name: 'EngineError', code: 'INVALID_COMMAND' });
      }
      expect((await engine.submit(limit(A, 1, 'buy', 100, 1, { ts: 1 }))).seq).toBe(1);
    } finally {
      await engine.close();
    }
  });
});

describe('durable listeners with durability batch', () => {
  it('a listener that closes the engine: every listener hears strictly increasing values, the last one the last command', async () => {
    const engine = await open({ batchMax: 4 });
    const actor = actorOf(engine);
    let closing: Promise<void> | undefined;
    actor.onDurable(() => {
      closing ??= engine.close();
    });
    const heard: number[] = [];
    actor.onDurable((s) => heard.push(s));
    const subs = Array.from({ length: 30 }, (_v, i) => new Tracked(engine.submit(limit(A, i + 1, 'buy', 100, 1, { ts: 1 }))));
    await settle(actor.waitForDurable(30));
    await closing;
    await turns(1);
    expect(subs.every((s) => s.state === 'resolved')).toBe(true);
    expect(heard.at(-1)).toBe(30);
    for (let i = 1; i < heard.length; i++) expect(heard[i], `heard ${heard.join(', ')}`).toBeGreaterThan(heard[i - 1] as number);
  });

  it('a throwing listener and a throwing onListenerError: no unhandled rejection, every submit acknowledged, the other listener hears the last seq', async () => {
    let reports = 0;
    const engine = await open({
      batchMax: 2,
      onListenerError: () => {
        reports++;
        throw new Error('reporter broke');
      },
    });
    const actor = actorOf(engine);
    actor.onDurable(() => {
      throw new Error('listener broke');
    });
    const heard: number[] = [];
    actor.onDurable((s) => heard.push(s));
    const subs = Array.from({ length: 7 }, (_v, i) => new Tracked(engine.submit(limit(A, i + 1, 'buy', 100, 1, { ts: 1 }))));
    await actor.waitForDurable(7);
    expect(await settle(engine.close())).toBeUndefined();
    await turns(1);
    expect(subs.map((s) => s.state)).toEqual(Array(7).fill('resolved'));
    expect(reports).toBeGreaterThan(0);
    expect(heard.at(-1)).toBe(7);
  });
});

describe('waiters at a halt', () => {
  it('waitForProcessed for a seq the failed batch did not reach, and waitForDurable for an applied one, reject HALTED', async () => {
    const faulty = new FaultyIO();
    const engine = await open({ io: faulty.io });
    const actor = actorOf(engine);
    try {
      await engine.submit(limit(A, 100, 'buy', 100, 1, { ts: 1 }));
      faulty.arm({ dataWrite: (_i, file) => file.includes(`${path.sep}ev${path.sep}`) });
      const beyond = new Tracked(actor.waitForProcessed(50));
      const durable = new Tracked(actor.waitForDurable(3));
      for (let i = 1; i <= 5; i++) engine.submit(limit(A, i, 'buy', 100, 1, { ts: 1 })).catch(() => undefined);
      for (let i = 0; i < 50 && actor.halted === undefined; i++) await turns(1);
      await turns(1);
      expect(actor.halted?.code).toBe('HALTED');
      expect(beyond.state).toBe('rejected');
      expect(beyond.error).toMatchObject({ code: 'HALTED' });
      expect(durable.state).toBe('rejected');
      expect(durable.error).toMatchObject({ code: 'HALTED' });
      expect(refused(engine.trySubmit(limit(A, 9, 'buy', 100, 1))).code).toBe('HALTED');
    } finally {
      await engine.close();
    }
  });
});
