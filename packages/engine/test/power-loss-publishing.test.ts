// The engine and its publishers across restarts after a power loss.
//
// With durability `none` (a setting of the server: GX3_DURABILITY=none) "durable" means handed to the
// OS, so a power loss may take the logs' last appends with it; recovery then starts from what the
// disk kept (consistent logs, a shorter history) and the engine goes on from there. What must not
// happen: the publisher's cursor, which is fsync'ed on every commit whatever the durability, staying
// ahead of the recovered outbox (the events of every later command are then never published: the
// engine moves it back and starts a new outbox history), or a bus that keeps events across restarts
// (JetStream) taking the new events, which reuse the ids of the lost ones, for duplicates of those
// and dropping them (the bus compares a duplicate's bytes: EVENT_MISMATCH, reported).
//
// The power loss is simulated on a copy of the data directory taken while the engine runs (the disk
// as the power loss left it): the logs are cut back to what the last clean close had synced, the
// publisher's cursor is what was committed (fsync'ed) by then.
import fs from 'node:fs';
import path from 'node:path';
import { binaryCodec, type Event } from '@gx3/codecs';
import { MemoryBus, NatsJetStreamBus, readHistory } from '@gx3/outbox-publisher';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Engine, type SymbolActor } from '../src/index.js';
import { NATS_URL, natsProblem, unavailable } from '../../outbox-publisher/test/nats-helpers.js';
import { cmdDirOf, copyCommands, evDirOf, mixedCommands, removeTmpDirs, SEGMENT, tmpDir } from './helpers.js';

afterEach(removeTmpDirs);

const SYM = 'BTCUSDT';
const nats = unavailable(`NATS JetStream at ${NATS_URL}`, await natsProblem(NATS_URL), 'set NATS_URL to a server with JetStream');

/** Polls `cond` every 5 ms until it holds or `ms` have passed; returns whether it holds. */
async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return cond();
}

function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => /^\d{20}\.wal$/.test(n))
    .map((n) => path.join(dir, n));
}

/** The size of every log segment of `dataDir`, by its path relative to `dataDir` (durability none: no preallocation, size = data). */
function logSizes(dataDir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const d of [cmdDirOf(dataDir, SYM), evDirOf(dataDir, SYM)]) for (const f of segmentFiles(d)) sizes.set(path.relative(dataDir, f), fs.statSync(f).size);
  return sizes;
}

/**
 * The disk of the running engine of `dataDir` after a power loss: a copy of it whose logs are cut
 * back to `synced` (what the last clean close synced); the rest (the cursor, HISTORY) as it is now.
 */
function powerLossCopy(dataDir: string, synced: Map<string, number>): string {
  const crashDir = tmpDir();
  fs.cpSync(dataDir, crashDir, { recursive: true });
  for (const d of [cmdDirOf(crashDir, SYM), evDirOf(crashDir, SYM)]) {
    for (const f of segmentFiles(d)) fs.truncateSync(f, synced.get(path.relative(crashDir, f)) ?? 0);
  }
  return crashDir;
}


describe('publishing after a power loss (durability none)', () => {
  it('the events of commands acknowledged after the restart are published, although the committed cursor was ahead of the recovered outbox', async () => {
    const dataDir = tmpDir();
    const cmds = mixedCommands(SYM, 90, 3);
    const open = (dir: string, bus: MemoryBus): Promise<Engine> =>
      Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'none', segmentSize: SEGMENT, bus });

    // 40 commands, closed cleanly (a clean close syncs the logs).
    const bus1 = new MemoryBus({ retain: true });
    let engine = await open(dataDir, bus1);
    await Promise.all(copyCommands(cmds.slice(0, 40)).map((c) => engine.submit(c)));
    await engine.close();
    const synced = logSizes(dataDir);

    // 40 more, published and the cursor committed; then the power fails.
    engine = await open(dataDir, bus1);
    await Promise.all(copyCommands(cmds.slice(40, 80)).map((c) => engine.submit(c)));
    const actor = engine.actor(SYM) as SymbolActor;
    const publisher = engine.publisher(SYM);
    expect(await until(() => publisher?.stats().committedOffset === actor.durableEventOffset), 'the cursor was not committed').toBe(true);
    const crashDir = powerLossCopy(dataDir, synced);
    await engine.close();

    // The restart: recovery finds the 40 commands the disk kept; the engine goes on with new ones.
    const bus2 = new MemoryBus({ retain: true });
    engine = await open(crashDir, bus2);
    const recovered = engine.actor(SYM) as SymbolActor;
    expect(recovered.recovery.commands).toBe(40);
    // The cursor went back to the recovered outbox's end, and the outbox started a new history.
    expect(recovered.cursorReset).toEqual({ from: expect.any(Number) as number, to: recovered.durableEventOffset });
    expect(recovered.outbox.history).not.toBe(readHistory(evDirOf(dataDir, SYM)));
    const outcomes = await Promise.all(copyCommands(cmds.slice(80, 90)).map((c) => engine.submit(c)));
    const acknowledged = outcomes.flatMap((o) => o.events);
    const last = Math.max(...acknowledged.map((e) => e.eventSeq));
    await until(() => bus2.lastEventSeq(SYM) >= last);
    const stats = engine.publisher(SYM)?.stats();
    await engine.close();

    expect(
      bus2.messages(SYM).map((m) => m.event),
      `the publisher resumed at offset ${stats?.committedOffset}, the recovered outbox ends at ${recovered.durableEventOffset} (lagBytes ${stats?.lagBytes}, lastError ${String(stats?.lastError)})`,
    ).toEqual(expect.arrayContaining(acknowledged));
  });

  it.skipIf(nats.skip)(
    'the events of new commands that reuse the ids of events lost with the power are not dropped as duplicates of the stream\'s: EVENT_MISMATCH, reported',
    async () => {
      const bus = await NatsJetStreamBus.connect({ servers: NATS_URL, streamPrefix: `GX3R2${process.pid}x${Date.now().toString(36)}`, storage: 'memory' });
      const stream = bus.stream(SYM);
      try {
        const dataDir = tmpDir();
        const cmds = mixedCommands(SYM, 120, 5);
        const open = (dir: string): Promise<Engine> =>
          Engine.open({ dataDir: dir, symbols: [{ symbol: SYM }], durability: 'none', segmentSize: SEGMENT, bus, publisher: { ackTimeoutMs: 2000 } });

        // 40 commands, all published, closed cleanly.
        let engine = await open(dataDir);
        await Promise.all(copyCommands(cmds.slice(0, 40)).map((c) => engine.submit(c)));
        await engine.close();
        const synced = logSizes(dataDir);
        const cursorFile = path.join(evDirOf(dataDir, SYM), 'publisher.cursor');
        const cursorAtClose = fs.readFileSync(cursorFile);

        // 40 more, on the stream; the power fails before the publisher's next cursor commit reaches the disk.
        engine = await open(dataDir);
        await Promise.all(copyCommands(cmds.slice(40, 80)).map((c) => engine.submit(c)));
        const actor = engine.actor(SYM) as SymbolActor;
        const publisher = engine.publisher(SYM);
        expect(await until(() => (publisher?.stats().acknowledgedOffset ?? 0) >= actor.durableEventOffset), 'the stream did not take the events').toBe(true);
        const crashDir = powerLossCopy(dataDir, synced);
        fs.writeFileSync(path.join(evDirOf(crashDir, SYM), 'publisher.cursor'), cursorAtClose);
        await engine.close();

        // The restart on the same stream: 40 other commands (the workload goes on differently).
        engine = await open(crashDir);
        const recovered = engine.actor(SYM) as SymbolActor;
        expect(recovered.recovery.commands).toBe(40);
        await Promise.all(copyCommands(cmds.slice(80, 120)).map((c) => engine.submit(c)));
        const p2 = engine.publisher(SYM);
        expect(await until(() => (p2?.stats().consecutiveFailures ?? 0) > 0), 'the publisher to report the mismatch').toBe(true);
        const stats = p2?.stats();
        await engine.close();
        expect((stats?.lastError as { code?: string } | undefined)?.code).toBe('EVENT_MISMATCH');
        // Nothing past the recovered prefix was taken for delivered.
        expect(stats?.acknowledgedOffset ?? 0).toBeLessThan(recovered.durableEventOffset);

        const info = await bus.jsm.streams.info(stream);
        const onStream: Event[] = [];
        for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
          const m = await bus.jsm.streams.getMessage(stream, { seq });
          if (m) onStream.push(binaryCodec.decode(m.data) as Event);
        }
        // The stream still holds what it held: the lost events, none overwritten or interleaved.
        expect(onStream.map((e) => e.eventSeq)).toEqual(onStream.map((_e, i) => i + 1));
      } finally {
        await bus.jsm.streams.delete(stream).catch(() => undefined);
        await bus.close();
      }
    },
    30_000,
  );
});

afterAll(() => {
  if (nats.failure !== undefined) throw new Error(nats.failure);
});
