// Review of the actor and its mailbox: the ring at and around its capacity (sizes that are and are not
// powers of two, batchMax larger and smaller than the mailbox), submit() settled exactly once with
// its own outcome, acknowledgement only once both logs are durable, the watermarks, fair turns
// between many symbols, close() with pending commands (also when a sync fails inside it), the
// `option` named by INVALID_CONFIG, and the inputs and options that escape as untyped errors.
import fs from 'node:fs';
import path from 'node:path';
import { binaryCodec, type Command } from '@gx3/codecs';
import { MemoryBus } from '@gx3/outbox-publisher';
import { nodeFileIO, type Durability, type FileIO } from '@gx3/wal';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, EngineError, type CommandOutcome, type EngineOptions, type SymbolActor } from '../src/index.js';
import {
  accepted,
  cmdDirOf,
  engineRejection,
  evDirOf,
  FaultyIO,
  limit,
  outboxProblem,
  readCommandLog,
  readOutbox,
  refused,
  removeTmpDirs,
  SEGMENT,
  tmpDir,
  Tracked,
  turns,
} from './helpers.js';

afterEach(removeTmpDirs);

const A = 'AAA';

function open(options: Partial<EngineOptions> = {}): Promise<Engine> {
  return Engine.open({ dataDir: tmpDir(), symbols: [{ symbol: A }], segmentSize: SEGMENT, ...options });
}

function actorOf(engine: Engine, symbol = A): SymbolActor {
  const a = engine.actor(symbol);
  if (a === undefined) return expect.fail(`no actor for ${symbol}`);
  return a;
}

async function settle(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => v,
    (e: unknown) => e,
  );
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** What calling `f` gives: its value, or what it threw (wrapped, to tell the two apart). */
function attempt<T>(f: () => T): { value: T } | { threw: unknown } {
  try {
    return { value: f() };
  } catch (err) {
    return { threw: err };
  }
}

/**
 * A FileIO whose asynchronous fdatasyncs of the files under the directories `under()` names are held back (a slow disk)
 * until `release()`: the data is written, but its sync does not complete.
 */
function holdingSyncs(under: () => string[]): { io: FileIO; held: () => number; release: () => void } {
  const pathOf = new Map<number, string>();
  const held: (() => void)[] = [];
  let holding = true;
  const io: FileIO = {
    ...nodeFileIO,
    open: (file, flags) => {
      const fd = nodeFileIO.open(file, flags);
      pathOf.set(fd, file);
      return fd;
    },
    sync: (fd, done) => {
      nodeFileIO.sync(fd, (err) => {
        const file = pathOf.get(fd) ?? '';
        if (holding && under().some((d) => file.startsWith(d + path.sep))) held.push(() => {
          done(err);
        });
        else done(err);
      });
    },
  };
  return {
    io,
    held: () => held.length,
    release: () => {
      holding = false;
      for (const r of held.splice(0)) r();
    },
  };
}

// ---------------------------------------------------------------------------------------------

describe('the ring mailbox around its capacity', () => {
  const shapes: [number, number][] = [
    [1, 1],
    [1, 64],
    [5, 2],
    [5, 7],
    [6, 6],
    [8, 3],
    [8, 8],
    [8, 100],
  ];
  it.each(shapes)('mailboxSize %i, batchMax %i: takes exactly mailboxSize, each submit() settles once with its own seq and events, through many wraps', async (mailboxSize, batchMax) => {
    const dataDir = tmpDir();
    const engine = await open({ dataDir, mailboxSize, batchMax, durability: 'none' });
    const actor = actorOf(engine);
    const outcomes: { id: number; t: Tracked<CommandOutcome> | undefined; seq: number }[] = [];
    let id = 0;
    let taken = 0;
    for (let round = 0; round < 30; round++) {
      // Fill it exactly: alternately submit() (a waiter in the slot) and trySubmit() (none).
      for (let k = 0; k < mailboxSize; k++) {
        const cmd = limit(A, ++id, 'buy', 100 + (id % 7), 1, { ts: 1 });
        if ((round + k) % 2 === 0) {
          const t = new Tracked(engine.submit(cmd));
          outcomes.push({ id, t, seq: ++taken });
        } else {
          expect(accepted(engine.trySubmit(cmd))).toBe(++taken);
          outcomes.push({ id, t: undefined, seq: taken });
        }
      }
      expect(actor.queued).toBe(mailboxSize);
      const extra = limit(A, ++id, 'buy', 100, 1, { ts: 0 });
      expect(refused(engine.trySubmit(extra)).code).toBe('MAILBOX_FULL');
      expect(extra).toMatchObject({ seq: 0, ts: 0 });
      expect((await engineRejection(engine.submit(limit(A, ++id, 'buy', 100, 1, { ts: 1 })))).code).toBe('MAILBOX_FULL');
      await actor.waitForProcessed(taken);
      expect(actor.queued).toBe(0);
    }
    await actor.waitForDurable(taken);
    await turns(1);
    for (const o of outcomes) {
      if (o.t === undefined) continue;
      expect(o.t.state, `submit of order ${o.id}`).toBe('resolved');
      const value = o.t.value as CommandOutcome;
      expect(value.seq).toBe(o.seq);
      expect(value.events.map((e) => e.type)).toEqual(['accepted', 'added']);
      for (const e of value.events) expect(e).toMatchObject({ seq: o.seq, orderId: o.id });
    }
    await engine.close();
    expect(readCommandLog(cmdDirOf(dataDir, A), binaryCodec).map((r) => [r.msg.seq, r.msg.orderId])).toEqual(outcomes.map((o) => [o.seq, o.id]));
    expect(outboxProblem(readOutbox(evDirOf(dataDir, A), binaryCodec), taken)).toBeUndefined();
    expect(actor.book.orderCount).toBe(taken);
  });

  it('a command refused as INVALID_COMMAND takes no slot: a full-but-one mailbox still takes one valid command', async () => {
    const engine = await open({ mailboxSize: 3 });
    try {
      accepted(engine.trySubmit(limit(A, 1, 'buy', 100, 1)));
      accepted(engine.trySubmit(limit(A, 2, 'buy', 100, 1)));
      for (let i = 0; i < 5; i++) expect(refused(engine.trySubmit(limit(A, 3, 'buy', 100, 0.5))).code).toBe('INVALID_COMMAND');
      expect(actorOf(engine).queued).toBe(2);
      expect(accepted(engine.trySubmit(limit(A, 3, 'buy', 100, 1)))).toBe(3);
      expect(refused(engine.trySubmit(limit(A, 4, 'buy', 100, 1))).code).toBe('MAILBOX_FULL');
    } finally {
      await engine.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('acknowledged only once both logs are durable', () => {
  it.each(['cmd', 'ev'])('with the fdatasyncs of the %s log held back: commands are processed, none is acknowledged until they complete', async (which) => {
    const dataDir = tmpDir();
    const hold = holdingSyncs(() => [path.join(dataDir, A, which)]);
    const engine = await open({ dataDir, durability: 'batch', batchMax: 4, io: hold.io });
    const actor = actorOf(engine);
    const durableHeard: number[] = [];
    actor.onDurable((s) => durableHeard.push(s));
    const subs = Array.from({ length: 20 }, (_v, i) => new Tracked(engine.submit(limit(A, i + 1, 'buy', 100, 1, { ts: 1 }))));
    const w = new Tracked(actor.waitForDurable(1));
    await actor.waitForProcessed(20);
    // The held fdatasync reports once it ran on the thread pool (a bound for it to happen at all).
    for (let i = 0; i < 500 && hold.held() === 0; i++) await sleep(10);
    await turns(5);
    expect(hold.held()).toBeGreaterThan(0);
    expect(actor.processedSeq).toBe(20);
    expect(actor.durableSeq).toBe(0);
    expect(actor.durableEventOffset).toBe(0);
    expect(subs.filter((s) => s.state !== 'pending')).toEqual([]);
    expect(w.state).toBe('pending');
    expect(durableHeard).toEqual([]);
    hold.release();
    await actor.waitForDurable(20);
    await turns(1);
    expect(subs.map((s) => s.value?.seq)).toEqual(Array.from({ length: 20 }, (_v, i) => i + 1));
    expect(w.state).toBe('resolved');
    for (let i = 1; i < durableHeard.length; i++) expect(durableHeard[i]).toBeGreaterThan(durableHeard[i - 1] as number);
    await engine.close();
  });

  it('a stalled disk does not let commands pile up: maxPending bounds those taken and not yet durable (queued or applied), and room comes back as they become durable', async () => {
    const dataDir = tmpDir();
    const hold = holdingSyncs(() => [path.join(dataDir, A, 'cmd')]);
    const engine = await open({ dataDir, durability: 'batch', batchMax: 8, mailboxSize: 8, maxPending: 16, io: hold.io });
    const actor = actorOf(engine);
    let taken = 0;
    let orderId = 0;
    const subs: Tracked<CommandOutcome>[] = [];
    // Submit, let the actor process, submit again: the mailbox empties, the syncs stay held.
    for (let round = 0; round < 10; round++) {
      for (;;) {
        const cmd = limit(A, ++orderId, 'buy', 100, 1, { ts: 1 });
        const r = engine.trySubmit(cmd);
        if (typeof r !== 'number') {
          expect(['MAILBOX_FULL', 'DURABILITY_BACKLOG']).toContain(r.code);
          orderId--;
          break;
        }
        taken++;
      }
      await actor.waitForProcessed(actor.lastSubmittedSeq);
    }
    expect(actor.queued).toBe(0);
    expect(actor.processedSeq).toBe(16);
    expect(actor.durableSeq).toBe(0);
    expect(taken).toBe(16);
    // The mailbox is empty: the refusal is the backlog of commands not durable (submit() too).
    expect(engine.trySubmit(limit(A, orderId + 1, 'buy', 100, 1, { ts: 1 }))).toMatchObject({ code: 'DURABILITY_BACKLOG' });
    await expect(engine.submit(limit(A, orderId + 1, 'buy', 100, 1, { ts: 1 }))).rejects.toMatchObject({ code: 'DURABILITY_BACKLOG' });
    hold.release();
    await actor.waitForDurable(16);
    subs.push(new Tracked(engine.submit(limit(A, orderId + 1, 'buy', 100, 1, { ts: 1 }))));
    await actor.waitForDurable(17);
    await turns(1);
    expect(subs[0]?.value?.seq).toBe(17);
    await engine.close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('watermarks', () => {
  it.each(['none', 'batch', 'interval'] as Durability[])('with durability %s: durableSeq <= processedSeq <= lastSubmittedSeq at every turn, each moving forward only', async (durability) => {
    const engine = await open({ durability, batchMax: 7, mailboxSize: 50, syncIntervalMs: 1 });
    const actor = actorOf(engine);
    const heard: number[] = [];
    actor.onDurable((s) => heard.push(s));
    let last = { sub: 0, proc: 0, dur: 0 };
    let id = 0;
    for (let turn = 0; turn < 60; turn++) {
      for (let k = 0; k < 10; k++) {
        const r = engine.trySubmit(limit(A, ++id, id % 2 ? 'buy' : 'sell', id % 2 ? 100 : 101, 1, { ts: 1 }));
        if (typeof r !== 'number') expect(['MAILBOX_FULL', 'DURABILITY_BACKLOG']).toContain(r.code);
      }
      await turns(1);
      const now = { sub: actor.lastSubmittedSeq, proc: actor.processedSeq, dur: actor.durableSeq };
      expect(now.dur).toBeLessThanOrEqual(now.proc);
      expect(now.proc).toBeLessThanOrEqual(now.sub);
      expect(now.sub).toBeGreaterThanOrEqual(last.sub);
      expect(now.proc).toBeGreaterThanOrEqual(last.proc);
      expect(now.dur).toBeGreaterThanOrEqual(last.dur);
      last = now;
    }
    await actor.waitForDurable(actor.lastSubmittedSeq);
    expect(heard.at(-1)).toBe(actor.lastSubmittedSeq);
    for (let i = 1; i < heard.length; i++) expect(heard[i]).toBeGreaterThan(heard[i - 1] as number);
    await engine.close();
  });

  it('a closed-loop client submitting from onDurable: contiguous seqs, each acknowledged, in every mode', async () => {
    for (const durability of ['none', 'batch', 'interval'] as Durability[]) {
      const engine = await open({ durability, syncIntervalMs: 1 });
      const actor = actorOf(engine);
      const seqs: number[] = [];
      let id = 1;
      const done = new Promise<void>((resolve) => {
        actor.onDurable((seq) => {
          if (seq >= 50) {
            resolve();
            return;
          }
          seqs.push(accepted(actor.trySubmit(limit(A, ++id, 'buy', 100, 1, { ts: 1 }))));
        });
      });
      seqs.push(accepted(engine.trySubmit(limit(A, 1, 'buy', 100, 1, { ts: 1 }))));
      await done;
      expect(seqs, durability).toEqual(Array.from({ length: 50 }, (_v, i) => i + 1));
      expect(actor.durableSeq).toBe(50);
      await engine.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('fair turns between symbols', () => {
  it('four loaded symbols with durability batch: at no turn is one more than a batch ahead of another', async () => {
    const symbols = ['S1', 'S2', 'S3', 'S4'];
    const engine = await open({ symbols: symbols.map((symbol) => ({ symbol })), durability: 'batch', batchMax: 8, mailboxSize: 400 });
    try {
      const actors = symbols.map((s) => actorOf(engine, s));
      for (let i = 1; i <= 400; i++) for (const s of symbols) accepted(engine.trySubmit(limit(s, i, 'buy', 100, 1, { ts: 1 })));
      const spreads: number[] = [];
      while (actors.some((a) => a.processedSeq < 400)) {
        await turns(1);
        const p = actors.map((a) => a.processedSeq);
        spreads.push(Math.max(...p) - Math.min(...p));
      }
      expect(Math.max(...spreads)).toBeLessThanOrEqual(8);
      await Promise.all(actors.map((a) => a.waitForDurable(400)));
    } finally {
      await engine.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('close()', () => {
  it('with durability interval and a long interval: close() acknowledges what is pending at once (it does not wait for the timer)', async () => {
    const dataDir = tmpDir();
    const engine = await open({ dataDir, durability: 'interval', syncIntervalMs: 60_000 });
    const subs = Array.from({ length: 10 }, (_v, i) => new Tracked(engine.submit(limit(A, i + 1, 'buy', 100, 1, { ts: 1 }))));
    await turns(3);
    expect(subs.every((s) => s.state === 'pending')).toBe(true);
    await engine.close();
    await turns(1);
    expect(subs.map((s) => s.value?.seq)).toEqual(Array.from({ length: 10 }, (_v, i) => i + 1));
    const again = await open({ dataDir });
    expect(actorOf(again).recovery).toMatchObject({ commands: 10, rederived: 0, tornTails: 0 });
    await again.close();
  });

  it.each(['batch', 'interval'] as Durability[])('with durability %s, an fdatasync that fails inside close(): close() resolves, every pending submit and wait is rejected HALTED, nothing is acknowledged', async (durability) => {
    const faulty = new FaultyIO();
    const engine = await open({ durability, syncIntervalMs: 60_000, io: faulty.io, bus: new MemoryBus() });
    const actor = actorOf(engine);
    faulty.arm({ sync: () => true });
    const subs = Array.from({ length: 6 }, (_v, i) => new Tracked(engine.submit(limit(A, i + 1, 'buy', 100, 1, { ts: 1 }))));
    const wait = new Tracked(actor.waitForDurable(6));
    const heard: number[] = [];
    actor.onDurable((s) => heard.push(s));
    expect(await settle(engine.close())).toBeUndefined();
    await turns(2);
    expect(subs.map((s) => s.state)).toEqual(subs.map(() => 'rejected'));
    for (const s of subs) expect(s.error).toMatchObject({ name: 'EngineError', code: 'HALTED' });
    expect(wait.error).toMatchObject({ code: 'HALTED' });
    expect(actor.durableSeq).toBe(0);
    expect(heard).toEqual([]);
    expect(engine.publisher(A)?.stats().running).toBe(false);
    expect(refused(engine.trySubmit(limit(A, 9, 'buy', 100, 1))).code).toBe('CLOSED');
  });

  it('close() of several symbols with full mailboxes and small batches: every command is applied, acknowledged and recovered', async () => {
    const dataDir = tmpDir();
    const symbols = ['S1', 'S2', 'S3'];
    const engine = await open({ dataDir, symbols: symbols.map((symbol) => ({ symbol })), mailboxSize: 37, batchMax: 5 });
    const subs: Tracked<CommandOutcome>[] = [];
    for (const s of symbols) for (let i = 1; i <= 37; i++) subs.push(new Tracked(engine.submit(limit(s, i, 'sell', 100 + i, 1, { ts: 1 }))));
    for (const s of symbols) expect((await engineRejection(engine.submit(limit(s, 99, 'sell', 100, 1)))).code).toBe('MAILBOX_FULL');
    await engine.close();
    await turns(1);
    expect(subs.filter((s) => s.state !== 'resolved')).toEqual([]);
    const again = await Engine.open({ dataDir, symbols: symbols.map((symbol) => ({ symbol })), segmentSize: SEGMENT });
    for (const s of symbols) expect(actorOf(again, s).recovery).toMatchObject({ commands: 37, rederived: 0 });
    await again.close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('INVALID_CONFIG names the option', () => {
  const cases: [string, Partial<EngineOptions>, string][] = [
    ['batchMax 0', { batchMax: 0 }, 'batchMax'],
    ['batchMax 2.5', { batchMax: 2.5 }, 'batchMax'],
    ['mailboxSize 0', { mailboxSize: 0 }, 'mailboxSize'],
    ['mailboxSize "8"', { mailboxSize: '8' as unknown as number }, 'mailboxSize'],
    ['durability "fsync"', { durability: 'fsync' as Durability }, 'durability'],
    ['syncIntervalMs 0', { syncIntervalMs: 0 }, 'syncIntervalMs'],
    ['codec "xml"', { codec: 'xml' as never }, 'codec'],
  ];
  it.each(cases)('%s: INVALID_CONFIG with option %s, and the directory is not left locked', async (_what, options, option) => {
    const dataDir = tmpDir();
    const err = await settle(open({ dataDir, ...options }));
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: 'INVALID_CONFIG', option });
    const ok = await open({ dataDir });
    await ok.close();
  });

  it('a data directory that cannot be created (a file in the way): INVALID_CONFIG with option dataDir', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
    const err = await settle(open({ dataDir: path.join(file, 'sub') }));
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: 'INVALID_CONFIG', option: 'dataDir' });
  });
});

// =============================================================================================
// Bugs

describe('a command that is not an object is a typed refusal (trySubmit) or rejection (submit), not a TypeError', () => {
  // engine.ts trySubmit/submit read `cmd.symbol` unguarded: trySubmit(null) throws
  // "TypeError: Cannot read properties of null (reading 'symbol')", and submit(null) throws it
  // synchronously instead of returning a rejected promise.
  it.each([
    ['null', null],
    ['undefined', undefined],
  ])('%s: trySubmit returns a refusal, submit rejects with an EngineError; the engine goes on', async (_what, bad) => {
    const engine = await open();
    try {
      const r = attempt(() => engine.trySubmit(bad as unknown as Command));
      expect(r, `trySubmit threw ${String((r as { threw?: unknown }).threw)}`).toHaveProperty('value');
      const refusal = refused((r as { value: ReturnType<Engine['trySubmit']> }).value);
      expect(['INVALID_COMMAND', 'UNKNOWN_SYMBOL']).toContain(refusal.code);
      const s = attempt(() => engine.submit(bad as unknown as Command));
      expect(s, `submit threw synchronously ${String((s as { threw?: unknown }).threw)}`).toHaveProperty('value');
      const err = await settle((s as { value: Promise<CommandOutcome> }).value);
      expect(err).toBeInstanceOf(EngineError);
      expect((await engine.submit(limit(A, 1, 'buy', 100, 1))).seq).toBe(1);
    } finally {
      await engine.close();
    }
  });
});

describe('a frozen command object is refused INVALID_COMMAND (the actor must set its seq), not a TypeError', () => {
  // symbol-actor.ts enqueue() writes `cmd.seq = seq` (line 482) on the caller's object before
  // anything else: for a frozen (or read-only) command that throws "Cannot assign to read only
  // property 'seq'" out of trySubmit, and submit() rejects with that TypeError, not an EngineError.
  it('trySubmit returns a sequence number or a typed refusal; submit settles with an outcome or an EngineError; no seq is lost', async () => {
    const engine = await open();
    try {
      const r = attempt(() => engine.trySubmit(Object.freeze(limit(A, 1, 'buy', 100, 1, { ts: 1 }))));
      expect(r, `trySubmit threw ${String((r as { threw?: unknown }).threw)}`).toHaveProperty('value');
      const v = (r as { value: ReturnType<Engine['trySubmit']> }).value;
      if (typeof v !== 'number') expect(v.code).toBe('INVALID_COMMAND');
      const s = await settle(engine.submit(Object.freeze(limit(A, 2, 'buy', 100, 1, { ts: 1 }))));
      if (s instanceof Error) expect(s).toBeInstanceOf(EngineError);
      const taken = (typeof v === 'number' ? 1 : 0) + (s instanceof Error ? 0 : 1);
      expect((await engine.submit(limit(A, 3, 'buy', 100, 1))).seq).toBe(taken + 1);
    } finally {
      await engine.close();
    }
  });
});

describe('options no engine can use are INVALID_CONFIG at Engine.open, not TypeErrors or a halted actor', () => {
  // checkOptions (engine.ts) reads `options.symbols.length` unguarded, accepts any value of type
  // 'object' as a codec (null, or an object that is not a codec), and the constructor passes a
  // symbol that is not a string to SYMBOL.test (which coerces it) and then `startsWith`/path.join.
  // The clock is never checked: a clock that is not a function throws a TypeError from the first
  // trySubmit of a command with ts 0.
  const cases: [string, Record<string, unknown>, string | undefined][] = [
    ['symbols missing', { symbols: undefined }, undefined],
    ['a symbol that is a number', { symbols: [{ symbol: 123 }] }, undefined],
    ['a symbol entry that is null', { symbols: [null] }, undefined],
    ['codec null', { codec: null }, 'codec'],
    ['a codec object that is not a codec', { codec: {} }, 'codec'],
    ['a clock that is not a function', { clock: 'now' }, undefined],
  ];
  it.each(cases)('%s', async (_what, options, option) => {
    const dataDir = tmpDir();
    const r = await settle(Engine.open({ dataDir, symbols: [{ symbol: A }], segmentSize: SEGMENT, ...(options as Partial<EngineOptions>) }));
    if (r instanceof Engine) {
      // Opened: then it must take a command (not halt, not throw).
      const s = attempt(() => r.trySubmit(limit(A, 1, 'buy', 100, 1)));
      const outcome = 'value' in s ? s.value : `threw ${String(s.threw)}`;
      await r.close();
      expect(outcome, 'the engine opened with these options, and then could not take a valid command').toBe(1);
      return;
    }
    expect(r).toBeInstanceOf(EngineError);
    expect((r as EngineError).code).toBe('INVALID_CONFIG');
    if (option !== undefined) expect((r as EngineError).option).toBe(option);
    // And the directory is not left locked.
    const ok = await Engine.open({ dataDir, symbols: [{ symbol: A }], segmentSize: SEGMENT });
    await ok.close();
  });
});

describe('an onDurable listener that closes the engine (durability none): every listener still hears strictly increasing values', () => {
  // markDurable (symbol-actor.ts ~line 677) calls the listeners in a loop; with durability `none`
  // a listener that calls close() re-enters processBatch -> checkDurable -> markDurable for the
  // rest of the mailbox synchronously, so the listeners after it hear 32 and 40 first, then the
  // outer loop resumes and tells them 16. Observed: [40, 32, 16].
  it('every listener hears strictly increasing durable seqs, the last being the last command', async () => {
    const engine = await open({ durability: 'none', batchMax: 16 });
    const actor = actorOf(engine);
    let closing: Promise<void> | undefined;
    actor.onDurable(() => {
      closing ??= engine.close();
    });
    const heard: number[] = [];
    actor.onDurable((s) => heard.push(s));
    for (let i = 1; i <= 40; i++) accepted(engine.trySubmit(limit(A, i, 'buy', 100, 1, { ts: 1 })));
    await settle(actor.waitForDurable(40));
    await turns(1);
    await closing;
    expect(actor.durableSeq).toBe(40);
    expect(heard.at(-1)).toBe(40);
    for (let i = 1; i < heard.length; i++) expect(heard[i], `heard ${heard.join(', ')}`).toBeGreaterThan(heard[i - 1] as number);
  });
});

describe('an onListenerError that throws is contained: close() resolves and every listener hears every value', () => {
  // markDurable (symbol-actor.ts ~lines 677-683) catches a listener's error but calls the reporter
  // (onListenerError) unguarded. When the reporter throws, the loop over the listeners stops
  // (the later ones never hear that seq) and the error leaves processBatch: inside close() it makes
  // close() reject with the reporter's error before the logs are closed (Engine.close releases the
  // lock anyway; the scheduled turn then goes on writing the rest of the mailbox to the logs).
  // With durability batch the same throw is an unhandled rejection (the `.then` of the batch's
  // syncs), and with none outside close() an uncaught exception from setImmediate; those are not
  // exercised here. Observed: close() rejects with "reporter broke"; the second listener heard
  // [4, 5], never 2.
  it('close() resolves, every submit is acknowledged, and the second listener hears every durable step', async () => {
    const dataDir = tmpDir();
    let reports = 0;
    const engine = await open({
      dataDir,
      durability: 'none',
      batchMax: 2,
      onListenerError: () => {
        if (reports++ === 0) throw new Error('reporter broke');
      },
    });
    const actor = actorOf(engine);
    let calls = 0;
    actor.onDurable(() => {
      if (calls++ === 0) throw new Error('listener broke');
    });
    const heard: number[] = [];
    actor.onDurable((s) => heard.push(s));
    const subs = [1, 2, 3, 4, 5].map((i) => new Tracked(engine.submit(limit(A, i, 'buy', 100, 1, { ts: 1 }))));
    const closed = await settle(engine.close());
    // Whatever happened, let the scheduled turn finish before the directory is removed.
    await settle(actor.waitForDurable(5));
    await turns(2);
    expect(closed, 'close() rejected').toBeUndefined();
    expect(subs.map((s) => s.state)).toEqual(['resolved', 'resolved', 'resolved', 'resolved', 'resolved']);
    expect(heard).toEqual([2, 4, 5]);
  });
});

describe('waitForProcessed(seq) registered before a halt resolves when seq was applied', () => {
  // halt() (symbol-actor.ts ~line 712, rejectWaiters) rejects every processed waiter, also those
  // whose seq the batch that failed had already applied (processBatch returns before
  // wakeProcessed). The same call made after the halt resolves, since processedSeq covers it:
  // observed processedSeq 6, the earlier waitForProcessed(3) rejected HALTED, a new one resolved.
  it('resolves, as the same call made after the halt does', async () => {
    const faulty = new FaultyIO();
    const engine = await open({ durability: 'batch', io: faulty.io });
    const actor = actorOf(engine);
    try {
      await engine.submit(limit(A, 100, 'buy', 100, 1, { ts: 1 }));
      // The outbox's write at the end of the next batch fails: its commands were applied.
      faulty.arm({ dataWrite: (_i, file) => file.includes(`${path.sep}ev${path.sep}`) });
      const early = new Tracked(actor.waitForProcessed(3));
      for (let i = 1; i <= 5; i++) engine.submit(limit(A, i, 'buy', 100, 1, { ts: 1 })).catch(() => undefined);
      for (let i = 0; i < 50 && actor.halted === undefined; i++) await turns(1);
      await turns(1);
      expect(actor.halted?.code).toBe('HALTED');
      expect(actor.processedSeq).toBeGreaterThanOrEqual(3);
      expect(await settle(actor.waitForProcessed(3))).toBeUndefined();
      expect(early.state).toBe('resolved');
    } finally {
      await engine.close();
    }
  });
});
