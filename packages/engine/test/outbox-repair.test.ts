// Recovery of the two logs when a crash left them out of step.
// - The outbox is behind the command log (a crash between the command's append and its events'):
//   the missing events are derived again and appended, with the same event sequence numbers and
//   byte for byte the same records.
// - The outbox is ahead of the command log (its records reached the disk, the command's did not):
//   what the command log does not cover is cut from the outbox.
// - Logs that do not belong together are refused (RECOVERY_FAILED), not merged.
import fs from 'node:fs';
import { binaryCodec, jsonCodec, type Codec, type CodecName, type Command } from '@gx3/codecs';
import { truncateLog, WalWriter } from '@gx3/wal';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, EngineError, type SymbolActor } from '../src/index.js';
import {
  bookOrders,
  bookState,
  cmdDirOf,
  copyCommands,
  evDirOf,
  mixedCommands,
  outboxProblem,
  rawRecords,
  readCommandLog,
  readOutbox,
  removeTmpDirs,
  SEGMENT,
  tmpDir,
} from './helpers.js';

afterEach(removeTmpDirs);

const SYM = 'ETHUSDT';
const N = 400;

const codecs: { name: CodecName; codec: Codec }[] = [
  { name: 'binary', codec: binaryCodec },
  { name: 'json', codec: jsonCodec },
];

/** Runs `cmds` through a fresh engine in a new data directory; returns the directory, closed. */
async function writeDataDir(cmds: readonly Command[], codec: CodecName): Promise<string> {
  const dataDir = tmpDir();
  const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'none', codec, segmentSize: SEGMENT });
  const outcomes = await Promise.all(copyCommands(cmds).map((c) => engine.submit(c)));
  expect(outcomes.map((o) => o.seq)).toEqual(cmds.map((_c, i) => i + 1));
  await engine.close();
  return dataDir;
}

/** Opens the data directory, returns the actor's recovery report, book state and orders, and closes it again. */
async function reopen(dataDir: string, codec: CodecName): Promise<{ recovery: SymbolActor['recovery']; hash: string; orders: string[] }> {
  const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'none', codec, segmentSize: SEGMENT });
  const actor = engine.actor(SYM) as SymbolActor;
  const out = { recovery: actor.recovery, hash: bookState(actor.book).hash, orders: bookOrders(actor.book) };
  await engine.close();
  return out;
}

describe.each(codecs)('outbox repair on recovery ($name codec)', ({ name, codec }) => {
  const cmds = mixedCommands(SYM, N, 17);

  it('derives again the events of the commands whose events the outbox lost, with the same event sequence numbers', async () => {
    const dataDir = await writeDataDir(cmds, name);
    const evDir = evDirOf(dataDir, SYM);
    const before = readOutbox(evDir, codec);
    const beforeRaw = rawRecords(evDir);
    expect(outboxProblem(before, N)).toBeUndefined();
    const { hash: hashBefore } = await reopen(dataDir, name);

    // Cut the outbox back to just after the CmdEnd of command 250: a crash after command 251..400
    // reached the command log but before their events reached the outbox.
    const keep = 250;
    const cut = before.find((r) => r.msg.type === 'cmdEnd' && r.msg.seq === keep);
    if (cut === undefined) return expect.fail(`no CmdEnd of command ${keep} in the outbox`);
    expect(truncateLog(evDir, cut.end)).toBeGreaterThan(0);
    expect(readOutbox(evDir, codec).length).toBeLessThan(before.length);

    const r = await reopen(dataDir, name);
    expect(r.recovery.commands).toBe(N);
    expect(r.recovery.rederived).toBe(N - keep);
    expect(r.recovery.outboxBytesCut).toBe(0);
    const after = readOutbox(evDir, codec);
    expect(after.map((x) => x.msg)).toEqual(before.map((x) => x.msg));
    expect(after.map((x) => x.offset)).toEqual(before.map((x) => x.offset));
    const afterRaw = rawRecords(evDir);
    expect(afterRaw.length).toBe(beforeRaw.length);
    expect(afterRaw.every((b, i) => b.equals(beforeRaw[i] as Buffer))).toBe(true);
    expect(r.hash).toBe(hashBefore);

    // A second reopen finds nothing to do.
    const again = await reopen(dataDir, name);
    expect(again.recovery).toMatchObject({ commands: N, rederived: 0, outboxBytesCut: 0, tornTails: 0 });
  });

  it('cuts the events of a command whose CmdEnd is missing, then derives them again', async () => {
    const dataDir = await writeDataDir(cmds, name);
    const evDir = evDirOf(dataDir, SYM);
    const before = readOutbox(evDir, codec);
    // The last event of the last command with at least two events, its CmdEnd lost: the outbox ends
    // in the middle of a command.
    const idx = before.findLastIndex((r, i) => r.msg.type === 'cmdEnd' && r.msg.events >= 2 && i > 0);
    const lastEvent = before[idx - 1];
    const cmdEnd = before[idx];
    if (lastEvent === undefined || cmdEnd === undefined || cmdEnd.msg.type !== 'cmdEnd') return expect.fail('no command with two events');
    const partialOf = cmdEnd.msg.seq;
    truncateLog(evDir, lastEvent.end); // keep the command's events but not its CmdEnd
    expect(readOutbox(evDir, codec).length).toBe(idx);
    expect(outboxProblem(readOutbox(evDir, codec))).toMatch(/without a CmdEnd/);

    const r = await reopen(dataDir, name);
    expect(r.recovery.commands).toBe(N);
    expect(r.recovery.outboxBytesCut).toBeGreaterThan(0); // the partial command's events
    expect(r.recovery.rederived).toBe(N - partialOf + 1);
    expect(readOutbox(evDir, codec).map((x) => x.msg)).toEqual(before.map((x) => x.msg));
  });

  it('derives the whole outbox again when it is gone', async () => {
    const dataDir = await writeDataDir(cmds, name);
    const evDir = evDirOf(dataDir, SYM);
    const before = readOutbox(evDir, codec);
    truncateLog(evDir, 0);
    expect(readOutbox(evDir, codec)).toEqual([]);
    const r = await reopen(dataDir, name);
    expect(r.recovery.rederived).toBe(N);
    expect(readOutbox(evDir, codec).map((x) => x.msg)).toEqual(before.map((x) => x.msg));
  });

  it('cuts from the outbox the events of commands the command log does not hold, and the state is that of the shorter log', async () => {
    const dataDir = await writeDataDir(cmds, name);
    const cmdDir = cmdDirOf(dataDir, SYM);
    const evDir = evDirOf(dataDir, SYM);
    const before = readOutbox(evDir, codec);
    const logged = readCommandLog(cmdDir, codec);
    expect(logged).toHaveLength(N);

    // The command log loses commands 301..400 (their records never reached the disk), the outbox kept their events.
    const keep = 300;
    const at = logged[keep]?.offset;
    if (at === undefined) return expect.fail(`no command ${keep + 1} in the log`);
    expect(truncateLog(cmdDir, at)).toBeGreaterThan(0);

    // Recover, and go on in the same engine: the next command is 301, its events follow on without a gap.
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'none', codec: name, segmentSize: SEGMENT });
    const actor = engine.actor(SYM) as SymbolActor;
    const recovery = actor.recovery;
    const orders = bookOrders(actor.book);
    const hash = bookState(actor.book).hash;
    const afterRecovery = readOutbox(evDir, codec);
    const next = await engine.submit({ ...(cmds[keep] as Command) });
    await engine.close();

    expect(recovery.commands).toBe(keep);
    expect(recovery.outboxBytesCut).toBeGreaterThan(0);
    expect(recovery.rederived).toBe(0);
    const lastKept = before.findIndex((x) => x.msg.type === 'cmdEnd' && x.msg.seq === keep);
    expect(afterRecovery.map((x) => x.msg)).toEqual(before.slice(0, lastKept + 1).map((x) => x.msg));
    expect(outboxProblem(afterRecovery, keep)).toBeUndefined();
    expect(recovery.outboxBytesCut).toBe((before[before.length - 1]?.end ?? 0) - (before[lastKept]?.end ?? 0));

    // The same state as an engine that only ever saw the first 300 commands.
    const refDir = await writeDataDir(cmds.slice(0, keep), name);
    const ref = await reopen(refDir, name);
    expect(orders).toEqual(ref.orders);
    expect(hash).toBe(ref.hash);
    expect(afterRecovery.map((x) => x.msg)).toEqual(readOutbox(evDirOf(refDir, SYM), codec).map((x) => x.msg));

    // The next command's events are in the outbox, as they were before the cut.
    expect(next.seq).toBe(keep + 1);
    expect(next.events.length).toBeGreaterThan(0);
    const tail = readOutbox(evDir, codec);
    expect(outboxProblem(tail, keep + 1)).toBeUndefined();
    expect(tail.map((x) => x.msg)).toEqual(before.slice(0, before.findIndex((x) => x.msg.type === 'cmdEnd' && x.msg.seq === keep + 1) + 1).map((x) => x.msg));
  });
});

describe('logs that do not belong together', () => {
  it('refuses an outbox whose events do not follow from the command log (RECOVERY_FAILED)', async () => {
    const a = await writeDataDir(mixedCommands(SYM, 200, 1), 'binary');
    const b = await writeDataDir(mixedCommands(SYM, 200, 2), 'binary');
    // Put b's outbox beside a's command log.
    const evA = evDirOf(a, SYM);
    fs.rmSync(evA, { recursive: true });
    fs.cpSync(evDirOf(b, SYM), evA, { recursive: true });
    const err = await Engine.open({ dataDir: a, symbols: [{ symbol: SYM }], durability: 'none', segmentSize: SEGMENT }).then(
      () => expect.fail('the engine opened logs that do not belong together'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('RECOVERY_FAILED');
  });

  it('refuses a command log whose sequence numbers do not follow on (RECOVERY_FAILED)', async () => {
    const a = await writeDataDir(mixedCommands(SYM, 50, 3), 'binary');
    // Rewrite the command log without its first command.
    const cmdDir = cmdDirOf(a, SYM);
    const logged = readCommandLog(cmdDir, binaryCodec);
    fs.rmSync(cmdDir, { recursive: true });
    fs.rmSync(evDirOf(a, SYM), { recursive: true });
    const w = WalWriter.open(cmdDir, { durability: 'none', segmentSize: SEGMENT });
    for (const r of logged.slice(1)) w.append(binaryCodec.encodeToBuffer(r.msg));
    await w.close();
    const err = await Engine.open({ dataDir: a, symbols: [{ symbol: SYM }], durability: 'none', segmentSize: SEGMENT }).then(
      () => expect.fail('the engine opened a command log starting at seq 2'),
      (e: unknown) => e,
    );
    expect((err as EngineError).code).toBe('RECOVERY_FAILED');
  });
});
