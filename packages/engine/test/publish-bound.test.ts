// What a publisher in the engine's process may publish: only the events of commands that are durable
// in the command log too (the actor's durable watermark), never what the outbox alone made durable.
// The outbox can be durable ahead of the command log: the two logs sync concurrently, and the
// outbox may roll (and sync its old segment) in the middle of a batch. Events published from there
// would be cut by the next recovery and their event ids reused by other events, which a
// de-duplicating bus would then drop. Also: the batch's commands are written out before anything of
// the batch reaches the outbox's file.
import { binaryCodec, type Command } from '@gx3/codecs';
import { MemoryBus } from '@gx3/outbox-publisher';
import { nodeFileIO, type FileIO } from '@gx3/wal';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, type SymbolActor } from '../src/index.js';
import { cmdDirOf, copyCommands, evDirOf, FaultyIO, mixedCommands, readCommandLog, readOutbox, removeTmpDirs, SEGMENT, tmpDir, turns } from './helpers.js';

afterEach(removeTmpDirs);

const SYM = 'BTCUSDT';
const BATCH = 64;
const COMMANDS = mixedCommands(SYM, 64 * 1000, 7);

function enospc(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write', errno: -28 });
}

function isData(buf: Uint8Array, offset: number, length: number): boolean {
  return length >= 4 && ((buf[offset] ?? 0) | (buf[offset + 1] ?? 0) | (buf[offset + 2] ?? 0) | (buf[offset + 3] ?? 0)) !== 0;
}

/** Events the bus holds vs the events of the outbox (CmdEnd excluded), by event sequence number. */
function busVsOutbox(bus: MemoryBus, evDir: string): { bus: unknown[]; outbox: unknown[] } {
  const outbox = readOutbox(evDir, binaryCodec)
    .map((r) => r.msg)
    .filter((e) => e.type !== 'cmdEnd');
  const onBus = bus.messages(SYM).map((m) => m.event);
  return { bus: onBus, outbox };
}

describe('the publisher of an engine publishes only events of durable commands', () => {
  it('a failed command-log write after an outbox segment roll: nothing of the failed batch is published or reaches the outbox, and after the restart the bus equals the outbox', async () => {
    const dataDir = tmpDir();
    const cmdDir = cmdDirOf(dataDir, SYM);
    const evDir = evDirOf(dataDir, SYM);
    let started = false;
    let outboxRolled = false;
    let injected = false;
    const pathOf = new Map<number, string>();
    // nodeFileIO, except: once the outbox has rolled to a new segment, the next record write of the
    // command log fails with ENOSPC (the writer cuts its segment back and the actor halts).
    const io: FileIO = {
      ...nodeFileIO,
      open: (file, flags) => {
        const fd = nodeFileIO.open(file, flags);
        pathOf.set(fd, file);
        if (started && flags === 'wx+' && file.startsWith(evDir) && /\d{20}\.wal$/.test(file)) outboxRolled = true;
        return fd;
      },
      close: (fd) => {
        pathOf.delete(fd);
        nodeFileIO.close(fd);
      },
      rename: (from, to) => {
        nodeFileIO.rename(from, to);
        for (const [fd, p] of pathOf) if (p === from) pathOf.set(fd, to);
        if (started && to.startsWith(evDir) && /\d{20}\.wal$/.test(to)) outboxRolled = true;
      },
      write: (fd, buf, offset, length, position) => {
        if (outboxRolled && !injected && (pathOf.get(fd) ?? '').startsWith(cmdDir) && isData(buf, offset, length)) {
          injected = true;
          throw enospc();
        }
        return nodeFileIO.write(fd, buf, offset, length, position);
      },
    };

    const bus = new MemoryBus({ retain: true });
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', batchMax: BATCH, segmentSize: SEGMENT, io, bus });
    const actor = engine.actor(SYM) as SymbolActor;
    started = true;
    const cmds = copyCommands(COMMANDS);
    let n = 0;
    // One batch per turn of the loop, so that each batch's command records are still in the
    // command log's buffer when the outbox rolls in the middle of the batch.
    while (!injected && n + BATCH <= cmds.length) {
      for (let k = 0; k < BATCH; k++) engine.submit(cmds[n++] as Command).catch(() => undefined);
      await turns(2);
    }
    expect(injected, 'the outbox never rolled').toBe(true);
    await turns(5);
    expect(actor.halted?.code).toBe('HALTED');

    // What the command log holds after the failure (the writer cut its segment back).
    const logged = readCommandLog(cmdDir, binaryCodec).length;
    const publishedSeqs = bus.messages(SYM).map((m) => (m.event as { seq: number }).seq);
    const maxPublishedCmd = Math.max(0, ...publishedSeqs);
    await engine.close();

    // Restart with the same bus: recovery cuts the outbox back to the command log.
    const again = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT, bus });
    const recovered = again.actor(SYM) as SymbolActor;
    const next = copyCommands(COMMANDS.slice(n, n + 20));
    await Promise.all(next.map((c) => again.submit(c)));
    await again.close();
    const { bus: onBus, outbox } = busVsOutbox(bus, evDir);

    expect(maxPublishedCmd, `events of command ${maxPublishedCmd} were published, but the command log holds only ${logged} commands`).toBeLessThanOrEqual(logged);
    expect(recovered.recovery.outboxBytesCut, 'the outbox reached the disk ahead of the command log').toBe(0);
    expect(onBus).toEqual(outbox);
  });

  it('a batch whose outbox synced but whose command-log sync failed is not published; after a power loss the bus equals the recovered outbox', async () => {
    const dataDir = tmpDir();
    const cmdDir = cmdDirOf(dataDir, SYM);
    const faulty = new FaultyIO();
    const pathOf = new Map<number, string>();
    let armed = false;
    let held: (() => void) | undefined;
    // faulty.io tracks what was written and synced (for powerLoss); the command log's next
    // fdatasync after arming is held, and failed with EIO when the test releases it.
    const io: FileIO = {
      ...faulty.io,
      open: (file, flags) => {
        const fd = faulty.io.open(file, flags);
        pathOf.set(fd, file);
        return fd;
      },
      close: (fd) => {
        pathOf.delete(fd);
        faulty.io.close(fd);
      },
      sync: (fd, done) => {
        if (armed && (pathOf.get(fd) ?? '').startsWith(cmdDir)) {
          armed = false;
          held = () => {
            done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', syscall: 'fdatasync', errno: -5 }));
          };
          return;
        }
        faulty.io.sync(fd, done);
      },
    };
    const bus = new MemoryBus({ retain: true });
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', batchMax: BATCH, segmentSize: SEGMENT, io, bus });
    const actor = engine.actor(SYM) as SymbolActor;
    const cmds = copyCommands(COMMANDS);
    const first = cmds.slice(0, 10);
    await Promise.all(first.map((c) => engine.submit(c)));
    const publishedCommand = (): number => Math.max(0, ...bus.messages(SYM).map((m) => (m.event as { seq: number }).seq));

    armed = true;
    const second = cmds.slice(10, 20);
    const pending = second.map((c) => engine.submit(c).then(() => 'acked', () => 'rejected'));
    // Wait (polling, bounded) until the command log's sync is held and the outbox's
    // sync of the same batch has completed, then give the publisher turns to act on it.
    const outboxSynced = (): boolean => actor.outbox.log.durableOffset > 0 && actor.outbox.log.durableOffset >= actor.outbox.log.writtenOffset;
    for (let i = 0; i < 20_000 && (held === undefined || actor.processedSeq < 20 || !outboxSynced()); i++) await new Promise((r) => setTimeout(r, 1));
    expect(held, 'the command log was not synced').toBeDefined();
    expect(outboxSynced(), "the outbox's sync did not complete").toBe(true);
    await turns(5);
    expect(publishedCommand(), 'events of a command not durable in the command log were published').toBe(10);
    held?.();
    const outcomes = await Promise.all(pending);
    expect(outcomes.every((o) => o === 'rejected')).toBe(true);
    expect(actor.halted?.code).toBe('HALTED');
    await engine.close();
    // The failed fdatasync may have dropped the pages; a power loss loses what was not synced.
    faulty.powerLoss(dataDir);

    const again = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT, bus });
    const recovered = again.actor(SYM) as SymbolActor;
    expect(recovered.recovery.commands).toBe(10);
    await Promise.all(copyCommands(cmds.slice(20, 30)).map((c) => again.submit(c)));
    await again.close();
    const { bus: onBus, outbox } = busVsOutbox(bus, evDirOf(dataDir, SYM));
    expect(onBus).toEqual(outbox);
  });
});
