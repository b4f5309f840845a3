// The engine's life cycle at its edges: durable listeners that submit while a log rolls, opens that
// fail after the lock was taken, concurrent close() calls, waits left pending by a close, and bad
// sync intervals.
import fs from 'node:fs';
import path from 'node:path';
import { binaryCodec } from '@gx3/codecs';
import { MemoryBus } from '@gx3/outbox-publisher';
import { nodeFileIO, type FileIO } from '@gx3/wal';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, EngineError, type SymbolActor } from '../src/index.js';
import { accepted, cmdDirOf, limit, readCommandLog, removeTmpDirs, SEGMENT, tmpDir, Tracked } from './helpers.js';

afterEach(removeTmpDirs);

const SYM = 'BTCUSDT';

/** What `p` settles with: the value, or the error. */
async function settle(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => v,
    (e: unknown) => e,
  );
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

describe('sequence numbers', () => {
  it('a command submitted from an onDurable listener while a command-log segment rolls gets its own seq (listeners run after trySubmit returns); the logs reopen', async () => {
    const dataDir = tmpDir();
    const cmdDir = cmdDirOf(dataDir, SYM);
    // The command log's fdatasyncs on the thread pool are held back (a slow disk for that log): the
    // first batch's outbox is durable, its command-log record is not yet.
    const pathOf = new Map<number, string>();
    const held: (() => void)[] = [];
    let hold = true;
    const io: FileIO = {
      ...nodeFileIO,
      open: (file, flags) => {
        const fd = nodeFileIO.open(file, flags);
        pathOf.set(fd, file);
        return fd;
      },
      sync: (fd, done) => {
        nodeFileIO.sync(fd, (err) => {
          if (hold && (pathOf.get(fd) ?? '').startsWith(cmdDir + path.sep)) held.push(() => {
            done(err);
          });
          else done(err);
        });
      },
    };
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT, io });
    const actor = engine.actor(SYM) as SymbolActor;
    // A closed-loop client: when something becomes durable, it submits its next command.
    let inner: number | undefined;
    actor.onDurable(() => {
      if (inner === undefined) inner = accepted(actor.trySubmit(limit(SYM, 1_000_000, 'buy', 100, 1, { ts: 1 })));
    });
    let id = 1;
    accepted(actor.trySubmit(limit(SYM, id++, 'buy', 100, 1, { ts: 1 })));
    for (let i = 0; i < 2000 && (actor.outbox.durableOffset === 0 || held.length === 0); i++) await sleep(5);
    expect(held.length).toBeGreaterThan(0);
    expect(actor.durableSeq).toBe(0);
    // Enough commands to roll the command log: the roll's blocking fdatasync makes seq 1 durable,
    // inside trySubmit, and the listener's trySubmit runs right there.
    let outer = 0;
    const segments = (): number => fs.readdirSync(cmdDir).filter((f) => f.endsWith('.wal')).length;
    for (let i = 0; i < 60_000 && inner === undefined; i++) {
      const r = actor.trySubmit(limit(SYM, id++, 'buy', 100, 1, { ts: 1 }));
      if (typeof r !== 'number') break;
      outer = r;
      if (i % 256 === 0 && segments() > 1) break;
    }
    expect(segments(), 'the command log rolled').toBeGreaterThan(1);
    // The listener runs once trySubmit has returned (on a microtask), never inside it.
    await Promise.resolve();
    hold = false;
    for (const release of held.splice(0)) release();
    await engine.close();
    expect(inner, 'the listener ran').toBeDefined();
    expect(inner, 'two commands were given the same sequence number').not.toBe(outer);
    const seqs = readCommandLog(cmdDir, binaryCodec).map((r) => r.msg.seq);
    expect(seqs).toEqual(seqs.map((_s, i) => i + 1));
    const again = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT }));
    if (again instanceof Engine) await again.close();
    expect(again).toBeInstanceOf(Engine);
  });
});

describe('the data directory lock and the engine life cycle', () => {
  it('an open that fails on the publisher options (INVALID_CONFIG) releases the data directory and closes the logs', async () => {
    const dataDir = tmpDir();
    const bad = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, bus: new MemoryBus(), publisher: { window: 0 } }));
    expect(bad).toBeInstanceOf(Error);
    for (let i = 0; i < 100 && fs.existsSync(path.join(dataDir, 'LOCK')); i++) await sleep(10);
    const again = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT }));
    if (again instanceof Engine) await again.close();
    expect(again).toBeInstanceOf(Engine);
  });

  it('right after a failed open, the directory can be opened again at once (the lock is released before the failure is reported)', async () => {
    const dataDir = tmpDir();
    const bad = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }, { symbol: 'bad/name' }], segmentSize: SEGMENT }));
    expect((bad as EngineError).code).toBe('INVALID_CONFIG');
    const again = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT }));
    if (again instanceof Engine) await again.close();
    expect(again).toBeInstanceOf(Engine);
  });

  it('a second close() waits for the first: the directory is unlocked when it returns', async () => {
    const dataDir = tmpDir();
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
    for (let i = 1; i <= 50; i++) accepted(engine.trySubmit(limit(SYM, i, 'buy', 100, 1)));
    const first = engine.close();
    await engine.close();
    const again = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT }));
    await first;
    if (again instanceof Engine) await again.close();
    expect(again).toBeInstanceOf(Engine);
  });

  it('waitForDurable / waitForProcessed of a seq never reached are rejected (CLOSED) when close() is done', async () => {
    const dataDir = tmpDir();
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
    const actor = engine.actor(SYM) as SymbolActor;
    const durable = new Tracked(actor.waitForDurable(5));
    const processed = new Tracked(actor.waitForProcessed(5));
    await engine.submit(limit(SYM, 1, 'buy', 100, 1));
    await engine.close();
    for (let i = 0; i < 100 && (durable.state === 'pending' || processed.state === 'pending'); i++) await sleep(5);
    expect(durable.state).toBe('rejected');
    expect(processed.state).toBe('rejected');
  });

  it('an invalid syncIntervalMs is INVALID_CONFIG, not a failed recovery', async () => {
    const dataDir = tmpDir();
    const err = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'interval', syncIntervalMs: 0.5, segmentSize: SEGMENT }));
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('INVALID_CONFIG');
  });
});

describe('symbol limits', () => {
  it('a reopen with another price band or largest quantity is INVALID_CONFIG before anything is replayed; the same limits reopen', async () => {
    const dataDir = tmpDir();
    const config = { symbol: SYM, minPrice: 1, maxPrice: 10_000, maxQty: 1000 };
    const engine = await Engine.open({ dataDir, symbols: [config], segmentSize: SEGMENT });
    await engine.submit(limit(SYM, 1, 'sell', 100, 500));
    await engine.close();
    for (const other of [{ maxQty: 100 }, { maxQty: 2000 }, { minPrice: 2 }, { maxPrice: 20_000 }]) {
      const err = await settle(Engine.open({ dataDir, symbols: [{ ...config, ...other }], segmentSize: SEGMENT }));
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('INVALID_CONFIG');
      expect((err as EngineError).message).toMatch(/was opened with prices 1\.\.10000 and quantities up to 1000/);
    }
    const again = await Engine.open({ dataDir, symbols: [config], segmentSize: SEGMENT });
    expect(again.actor(SYM)?.book.orderCount).toBe(1);
    await again.close();
  });

  it('a LIMITS file that does not hold limits is RECOVERY_FAILED (never replaced)', async () => {
    const dataDir = tmpDir();
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
    await engine.close();
    const file = path.join(dataDir, SYM, 'LIMITS');
    fs.writeFileSync(file, '{"minPrice": "one"}');
    const err = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT }));
    expect((err as EngineError).code).toBe('RECOVERY_FAILED');
    expect(fs.readFileSync(file, 'utf8')).toBe('{"minPrice": "one"}');
  });
});

describe('durable listeners that throw', () => {
  it('a throwing onDurable listener is reported (onListenerError) and keeps neither the other listeners nor the acknowledgements from going on', async () => {
    const dataDir = tmpDir();
    const reported: { err: unknown; symbol: string }[] = [];
    const engine = await Engine.open({
      dataDir,
      symbols: [{ symbol: SYM }],
      segmentSize: SEGMENT,
      onListenerError: (err, symbol) => reported.push({ err, symbol }),
    });
    const actor = engine.actor(SYM) as SymbolActor;
    actor.onDurable(() => {
      throw new Error('a listener bug');
    });
    const heard: number[] = [];
    actor.onDurable((seq) => heard.push(seq));
    const first = await engine.submit(limit(SYM, 1, 'buy', 100, 1));
    const second = await engine.submit(limit(SYM, 2, 'buy', 101, 1));
    expect([first.seq, second.seq]).toEqual([1, 2]);
    expect(heard.at(-1)).toBe(2);
    expect(reported.length).toBeGreaterThanOrEqual(2);
    expect(reported[0]).toMatchObject({ symbol: SYM });
    expect((reported[0]?.err as Error).message).toBe('a listener bug');
    expect(actor.halted).toBeUndefined();
    await engine.close();
  });

  it('without onListenerError, a throwing listener is a process warning (ListenerError), not an unhandled rejection', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const engine = await Engine.open({ dataDir: tmpDir(), symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
      (engine.actor(SYM) as SymbolActor).onDurable(() => {
        throw new Error('another listener bug');
      });
      await engine.submit(limit(SYM, 1, 'buy', 100, 1));
      await engine.close();
      for (let i = 0; i < 100 && warnings.length === 0; i++) await sleep(5);
      expect(warnings.some((w) => w.name === 'ListenerError' && w.message.includes('another listener bug'))).toBe(true);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
