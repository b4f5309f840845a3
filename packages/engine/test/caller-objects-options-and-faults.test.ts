// Caller-owned command objects (changed or submitted again after submit), options no engine can
// use, the mailbox capacity, per-symbol publisher cursors, failed opens, and random fault-injection
// trials through recovery (the first kinds failed on the code before their fixes).
import fs from 'node:fs';
import path from 'node:path';
import { binaryCodec, type Command, type Event } from '@gx3/codecs';
import { MemoryBus } from '@gx3/outbox-publisher';
import type { Durability, FileIO } from '@gx3/wal';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, EngineError, type CommandOutcome, type SymbolActor } from '../src/index.js';
import {
  accepted,
  bookOrders,
  cancel,
  cmdDirOf,
  copyCommands,
  evDirOf,
  FaultyIO,
  limit,
  mixedCommands,
  outboxProblem,
  prng,
  readCommandLog,
  readOutbox,
  refused,
  removeTmpDirs,
  SEGMENT,
  tmpDir,
  Tracked,
  turns,
  type Faults,
} from './helpers.js';

afterEach(removeTmpDirs);

const SYM = 'BTCUSDT';
const ETH = 'ETHUSDT';

async function settle(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => v,
    (e: unknown) => e,
  );
}

/** Polls `cond` for at most `ms` (a bound for something to happen at all, not a timing assertion). */
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

/** JSON with sorted keys and without undefined members (key order and absent-vs-undefined do not matter). */
function canon(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>)
            .filter(([, y]) => y !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : x,
  );
}

function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

// ---------------------------------------------------------------------------------------------

type Kind = 'write' | 'short' | 'sync' | 'syncSync';

/**
 * One fault-injection trial: submits in waves until the actor halts (or all is done), closes, loses
 * power, reopens twice. Returns the problems found (empty when every invariant held).
 */
async function trial(seed: number, durability: Durability, kind: Kind, at: number, batchMax: number, total: number, segmentSize: number): Promise<string[]> {
  const problems: string[] = [];
  const dataDir = tmpDir();
  const f = new FaultyIO();
  let armed = false;
  let dataWrites = 0;
  let shortDone = false;
  // FaultyIO plus short writes: the `at`-th record write writes half of its bytes and says so.
  const io: FileIO = {
    ...f.io,
    write: (fd, buf, off, len, pos) => {
      const isData = len >= 4 && ((buf[off] ?? 0) | (buf[off + 1] ?? 0) | (buf[off + 2] ?? 0) | (buf[off + 3] ?? 0)) !== 0;
      if (armed && kind === 'short' && isData && !shortDone && dataWrites++ === at) {
        shortDone = true;
        return f.io.write(fd, buf, off, Math.max(1, Math.floor(len / 2)), pos);
      }
      return f.io.write(fd, buf, off, len, pos);
    },
  };
  const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability, syncIntervalMs: 1, batchMax, segmentSize, io });
  const actor = engine.actor(SYM) as SymbolActor;
  const faults: Faults = kind === 'write' ? { dataWrite: (i) => i >= at } : kind === 'sync' ? { sync: (i) => i >= at } : kind === 'syncSync' ? { syncSync: (i) => i >= at } : {};
  f.arm(faults);
  armed = true;
  const cmds = copyCommands(mixedCommands(SYM, total, seed));
  const tracked: Tracked<CommandOutcome>[] = [];
  let n = 0;
  while (n < cmds.length && !actor.halted) {
    for (let k = 0; k < 100 && n < cmds.length; k++) tracked.push(new Tracked(engine.submit(cmds[n++] as Command)));
    await turns(1);
  }
  await turns(5);
  if (actor.halted) {
    const r = actor.trySubmit(limit(SYM, 99_999_999, 'buy', 100, 1));
    if (typeof r === 'number' || r.code !== 'HALTED') problems.push(`a halted actor took a command: ${JSON.stringify(r)}`);
  } else {
    await Promise.allSettled(tracked.map((t) => t.promise));
  }
  await engine.close();
  await turns(2);
  const pending = tracked.filter((t) => t.state === 'pending').length;
  if (pending > 0) problems.push(`${pending} submit() promises still pending after close()`);
  for (const t of tracked) if (t.state === 'rejected' && (t.error as EngineError).code !== 'HALTED') problems.push(`rejected with ${String(t.error)}`);
  const acked = tracked.filter((t) => t.state === 'resolved').length;
  if (!tracked.slice(0, acked).every((t) => t.state === 'resolved')) problems.push('the acknowledged commands are not a prefix');
  if (durability !== 'none') f.powerLoss(dataDir);

  const again = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize });
  const rec = (again.actor(SYM) as SymbolActor).recovery;
  await again.close();
  if (rec.commands < acked) problems.push(`recovered ${rec.commands} commands, ${acked} were acknowledged`);
  const outbox = readOutbox(evDirOf(dataDir, SYM), binaryCodec);
  const p = outboxProblem(outbox, rec.commands);
  if (p !== undefined) problems.push(`outbox: ${p}`);
  const bySeq = new Map<number, Event[]>();
  for (const r of outbox) {
    if (r.msg.type === 'cmdEnd') continue;
    const l = bySeq.get(r.msg.seq) ?? [];
    l.push(r.msg);
    bySeq.set(r.msg.seq, l);
  }
  for (let i = 0; i < acked; i++) {
    const o = tracked[i]?.value as CommandOutcome;
    if (canon(bySeq.get(o.seq) ?? []) !== canon(o.events)) {
      problems.push(`command ${o.seq}: acknowledged with ${canon(o.events)}, recovered as ${canon(bySeq.get(o.seq) ?? [])}`);
      break;
    }
  }
  // Recovery is idempotent: a second reopen finds nothing to repair.
  const third = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize });
  const rec3 = (third.actor(SYM) as SymbolActor).recovery;
  await third.close();
  if (rec3.commands !== rec.commands || rec3.rederived !== 0 || rec3.outboxBytesCut !== 0 || rec3.tornTails !== 0) {
    problems.push(`the second reopen repaired again: ${JSON.stringify(rec)} then ${JSON.stringify(rec3)}`);
  }
  if (problems.length > 0) problems.unshift(`trial seed ${seed} ${durability} ${kind}@${at} batchMax ${batchMax}: acked ${acked}/${tracked.length}`);
  return problems;
}

describe('fault injection (failing writes, short writes, failing fsyncs) and recovery', () => {
  it('random trials: every acknowledged command comes back with the events it was acknowledged with, the outbox is whole, no promise is left pending, and a second reopen repairs nothing', async () => {
    const rnd = prng(7);
    const kinds: Kind[] = ['write', 'short', 'sync', 'syncSync'];
    const durabilities: Durability[] = ['batch', 'interval', 'none'];
    const problems: string[] = [];
    for (let t = 0; t < 12; t++) {
      const kind = kinds[Math.floor(rnd() * kinds.length)] as Kind;
      let durability = durabilities[Math.floor(rnd() * durabilities.length)] as Durability;
      if ((kind === 'sync' || kind === 'syncSync') && durability === 'none') durability = 'batch';
      problems.push(...(await trial(1 + t, durability, kind, Math.floor(rnd() * 40), 1 + Math.floor(rnd() * 64), 3000, SEGMENT)));
    }
    expect(problems).toEqual([]);
  }, 60_000);

  it('random trials across segment rolls (segments of 1 MiB + 4 KiB, faults also at the rolls)', async () => {
    const rnd = prng(3);
    const plan: [Durability, Kind][] = [
      ['batch', 'sync'],
      ['interval', 'syncSync'],
      ['interval', 'short'],
      ['batch', 'write'],
    ];
    const problems: string[] = [];
    for (const [i, [durability, kind]] of plan.entries()) {
      const at = Math.floor(rnd() * (kind === 'syncSync' ? 12 : 600));
      problems.push(...(await trial(100 + i, durability, kind, at, 1 + Math.floor(rnd() * 64), 25_000, (1 << 20) + 4096)));
    }
    expect(problems).toEqual([]);
  }, 60_000);
});

describe('recovery from logs damaged between runs', () => {
  it('a command log cut in the middle of its last record (no clean-close marker): that command is cut, its events are cut from the outbox, and the state is that of the shorter log', async () => {
    const dataDir = tmpDir();
    const cmds = mixedCommands(SYM, 300, 5);
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
    await Promise.all(copyCommands(cmds).map((c) => engine.submit(c)));
    await engine.close();
    const cmdDir = cmdDirOf(dataDir, SYM);
    const records = readCommandLog(cmdDir, binaryCodec);
    const last = records[records.length - 1] as { offset: number; end: number };
    fs.rmSync(path.join(cmdDir, 'CLEAN'), { force: true });
    fs.rmSync(path.join(evDirOf(dataDir, SYM), 'CLEAN'), { force: true });
    const seg = path.join(cmdDir, '00000000000000000000.wal');
    const fd = fs.openSync(seg, 'r+');
    fs.writeSync(fd, Buffer.alloc(last.end - last.offset - 5), 0, last.end - last.offset - 5, last.offset + 5);
    fs.closeSync(fd);

    const again = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
    const actor = again.actor(SYM) as SymbolActor;
    expect(actor.recovery.commands).toBe(299);
    expect(actor.recovery.tornTails).toBe(1);
    expect(actor.recovery.outboxBytesCut).toBeGreaterThan(0);
    const orders = bookOrders(actor.book);
    const next = await again.submit(limit(SYM, 10_000, 'buy', 1, 1, { ts: 1 }));
    expect(next.seq).toBe(300);
    await again.close();
    expect(outboxProblem(readOutbox(evDirOf(dataDir, SYM), binaryCodec), 300)).toBeUndefined();

    const refDir = tmpDir();
    const ref = await Engine.open({ dataDir: refDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, durability: 'none' });
    await Promise.all(copyCommands(cmds.slice(0, 299)).map((c) => ref.submit(c)));
    expect(bookOrders((ref.actor(SYM) as SymbolActor).book)).toEqual(orders);
    await ref.close();
  });
});

// ---------------------------------------------------------------------------------------------

describe('commands are applied as they were logged', () => {
  it('a command object changed by its caller after submit() returned: the acknowledged outcome is the one a reopen replays from the log', async () => {
    const dataDir = tmpDir();
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
    const cmd = limit(SYM, 1, 'sell', 100, 5, { ts: 1 });
    const pending = engine.submit(cmd);
    // The caller reuses its object (submit() took the command synchronously: it is logged already).
    (cmd as { qty: number }).qty = 9;
    const outcome = await pending;
    await engine.close();
    const added = outcome.events.find((e) => e.type === 'added') as Event & { qty: number };

    const again = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
    const recovered = (again.actor(SYM) as SymbolActor).book.getOrder(1);
    await again.close();
    // Logged with qty 5; acknowledged (and published) as resting with qty 9; recovered with qty 5.
    expect(recovered?.qty).toBe(added.qty);
  });

  it('the same command object submitted twice: each command keeps its own seq, and the outbox has one CmdEnd per command, in order', async () => {
    const dataDir = tmpDir();
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT });
    const c = cancel(SYM, 42, { ts: 1 }); // e.g. a client that retries a cancel
    const first = engine.submit(c);
    const second = engine.submit(c);
    const [a, b] = await Promise.all([first, second]);
    await engine.close();
    expect(a.seq).toBe(1);
    expect(b.seq).toBe(2);
    expect(a.events.every((e) => e.seq === 1)).toBe(true);
    expect(outboxProblem(readOutbox(evDirOf(dataDir, SYM), binaryCodec), 2)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------

describe('options checked on open', () => {
  it('a segmentSize the logs cannot use is INVALID_CONFIG, not a failed recovery', async () => {
    const dataDir = tmpDir();
    const err = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: 4096 }));
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('INVALID_CONFIG');
  });

  it('a symbol with an impossible price band, largest quantity or order count is INVALID_CONFIG, and no logs are created for it', async () => {
    for (const bad of [{ minPrice: 10, maxPrice: 5 }, { maxQty: 2 ** 53 }, { initialOrders: 0 }]) {
      const dataDir = tmpDir();
      const err = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM, ...bad }], segmentSize: SEGMENT }));
      expect(err, JSON.stringify(bad)).toBeInstanceOf(EngineError);
      expect((err as EngineError).code, JSON.stringify(bad)).toBe('INVALID_CONFIG');
      expect(fs.existsSync(path.join(dataDir, SYM)), `${JSON.stringify(bad)}: logs were created for a symbol whose options are refused`).toBe(false);
    }
  });

  it('an unknown codec name is an EngineError INVALID_CONFIG', async () => {
    const dataDir = tmpDir();
    const err = await settle(Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, codec: 'xml' as never }));
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('INVALID_CONFIG');
  });
});

describe('the mailbox', () => {
  it('mailboxSize is the capacity: with 5, the 6th queued command is refused MAILBOX_FULL', async () => {
    const dataDir = tmpDir();
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, mailboxSize: 5 });
    try {
      for (let i = 1; i <= 5; i++) expect(accepted(engine.trySubmit(limit(SYM, i, 'buy', 100, 1)))).toBe(i);
      expect(refused(engine.trySubmit(limit(SYM, 6, 'buy', 100, 1))).code).toBe('MAILBOX_FULL');
    } finally {
      await engine.close();
    }
  });

  it('a small ring wraps many times: refuses exactly at capacity, numbers contiguously, applies every taken command in order, and a refused command is left untouched', async () => {
    const dataDir = tmpDir();
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, mailboxSize: 4, batchMax: 3, durability: 'none' });
    const actor = engine.actor(SYM) as SymbolActor;
    let id = 0;
    let taken = 0;
    for (let round = 0; round < 50; round++) {
      for (let k = 0; k < 4; k++) expect(accepted(engine.trySubmit(limit(SYM, ++id, 'buy', 100, 1, { ts: 1 })))).toBe(++taken);
      const extra = limit(SYM, ++id, 'buy', 100, 1, { ts: 0 });
      expect(refused(engine.trySubmit(extra)).code).toBe('MAILBOX_FULL');
      expect(extra.seq).toBe(0);
      expect(extra.ts).toBe(0);
      await actor.waitForProcessed(taken);
    }
    await actor.waitForDurable(taken);
    await engine.close();
    const log = readCommandLog(cmdDirOf(dataDir, SYM), binaryCodec);
    expect(log.map((r) => r.msg.seq)).toEqual(Array.from({ length: taken }, (_v, i) => i + 1));
    expect(outboxProblem(readOutbox(evDirOf(dataDir, SYM), binaryCodec), taken)).toBeUndefined();
    expect(actor.book.orderCount).toBe(taken);
  });
});

// ---------------------------------------------------------------------------------------------

describe('publishers', () => {
  it('with publisher.cursorDir, each symbol keeps its own cursor: after a restart each publishes only its new events', async () => {
    const dataDir = tmpDir();
    const cursorDir = tmpDir();
    const options = { dataDir, symbols: [{ symbol: SYM }, { symbol: ETH }], segmentSize: SEGMENT, publisher: { cursorDir } };
    const bus1 = new MemoryBus({ retain: true });
    const e1 = await Engine.open({ ...options, bus: bus1 });
    for (let i = 1; i <= 30; i++) await e1.submit(limit(SYM, i, 'buy', 100, 1, { ts: 1 }));
    await e1.submit(limit(ETH, 1, 'buy', 100, 1, { ts: 1 }));
    await e1.close();
    expect(bus1.messages(SYM).length).toBe(60);
    expect(bus1.messages(ETH).length).toBe(2);

    const bus2 = new MemoryBus({ retain: true });
    const e2 = await Engine.open({ ...options, bus: bus2 });
    try {
      const s = await e2.submit(limit(SYM, 100, 'buy', 100, 1, { ts: 1 }));
      const t = await e2.submit(limit(ETH, 100, 'buy', 100, 1, { ts: 1 }));
      await until(() => bus2.messages(SYM).length >= s.events.length && bus2.messages(ETH).length >= t.events.length);
      expect(bus2.messages(SYM).map((m) => m.eventSeq)).toEqual(s.events.map((e) => e.eventSeq));
      expect(bus2.messages(ETH).map((m) => m.eventSeq)).toEqual(t.events.map((e) => e.eventSeq));
    } finally {
      await e2.close();
    }
  }, 20_000);
});

// ---------------------------------------------------------------------------------------------

describe('failed opens', () => {
  it('leave no file descriptor or handle open and release the lock (bad limits, duplicate symbol, corrupt command log; interval durability)', async () => {
    const dataDir = tmpDir();
    const e = await Engine.open({ dataDir, symbols: [{ symbol: SYM }, { symbol: ETH }], segmentSize: SEGMENT, durability: 'interval' });
    for (let i = 1; i <= 50; i++) await e.submit(limit(SYM, i, 'buy', 100, 1, { ts: 1 }));
    await e.close();
    const fds = fdCount();
    const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
    const seg = path.join(cmdDirOf(dataDir, SYM), '00000000000000000000.wal');
    const attempts: [string, () => Promise<unknown>][] = [
      ['limits', () => Engine.open({ dataDir, symbols: [{ symbol: SYM }, { symbol: ETH, maxQty: 5 }], segmentSize: SEGMENT, durability: 'interval' })],
      ['duplicate', () => Engine.open({ dataDir, symbols: [{ symbol: SYM }, { symbol: SYM }], segmentSize: SEGMENT, durability: 'interval' })],
      [
        'corrupt',
        () => {
          const b = fs.readFileSync(seg);
          b[20] = (b[20] ?? 0) ^ 0xff;
          fs.writeFileSync(seg, b);
          return Engine.open({ dataDir, symbols: [{ symbol: ETH }, { symbol: SYM }], segmentSize: SEGMENT, durability: 'interval' });
        },
      ],
    ];
    for (const [name, open] of attempts) {
      const r = await settle(open());
      expect(r, name).toBeInstanceOf(EngineError);
      expect(fs.existsSync(path.join(dataDir, 'LOCK')), name).toBe(false);
      await turns(3);
      expect(fdCount(), name).toBe(fds);
      expect((process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length, name).toBe(handles);
    }
  });
});
