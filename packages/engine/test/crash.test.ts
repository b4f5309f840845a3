// Crash test: a child process (the built package) runs the engine under load with `batch` durability
// and writes the sequence number of every command engine.submit() acknowledges; the parent kills it
// with SIGKILL at a random moment (while it starts, recovers, or works). After each kill the parent
// reads the logs as the kill left them:
//   - every acknowledged command is in the command log, and its events and CmdEnd in the outbox;
//   - the outbox's events carry eventSeq 1..N without gap or duplicate, each command's CmdEnd once, in order;
// and every third trial it also reopens the data directory in this process and checks that
//   - recovery finds every command of the command log (so >= the last acknowledged seq),
//   - the repaired outbox is whole (the same checks, now to the last command),
//   - the state equals the reference matcher's on the recovered prefix of the workload (the summary
//     computed from the outbox and the book), and the command log holds exactly that prefix.
// The same data directory goes through the trials (each child continues the workload from where
// recovery left it, often on logs a kill just left), until the workload is used up.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { binaryCodec, type Command } from '@gx3/codecs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, type SymbolActor } from '../src/index.js';
import {
  amend,
  cmdDirOf,
  commandFromLine,
  evDirOf,
  generateWorkload,
  OutboxChecker,
  prng,
  readCommandLog,
  readOutbox,
  RefModel,
  removeTmpDirs,
  SEGMENT,
  summaryFromOutbox,
  tmpDir,
} from './helpers.js';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const SRC = fileURLToPath(new URL('../src', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/crash-child.mjs', import.meta.url));
const TRIALS = 24;
const SYM = 'CRASH';
const OPS = 50_000;

afterAll(removeTmpDirs);

/** Whether the codecs accept a reduce-only amend (price 0): then the workload has amends too. */
function amendsWork(): boolean {
  try {
    binaryCodec.encodedLength(amend(SYM, 1, 0, 1, { ts: 1 }));
    return true;
  } catch {
    return false;
  }
}

interface Trial {
  /** `ready <n> ...`: the child opened the engine and recovered n commands. */
  ready: number | undefined;
  /** The rest of the child's recovery report: rederived, outbox bytes cut, torn tails. */
  repairs: [number, number, number];
  /** Acknowledged sequence numbers, in the order written (complete lines only). */
  acks: number[];
  done: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Runs the child and kills it `killAfterMs` after it started or, with `afterReady`, after it recovered. */
function runChild(dataDir: string, commandsFile: string, killAfterMs: number, afterReady: boolean): Promise<Trial> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dataDir, commandsFile, SYM, String(SEGMENT)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      timer ??= setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      out += s;
      if (afterReady && out.includes('\n')) arm();
    });
    child.stderr.on('data', (s: string) => {
      stderr += s;
    });
    if (!afterReady) arm();
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const trial: Trial = { ready: undefined, repairs: [0, 0, 0], acks: [], done: false, code, signal, stderr };
      // Only complete lines count: a line is written whole, after its acknowledgement.
      for (const line of out.split('\n').slice(0, -1)) {
        if (line.startsWith('ready ')) {
          const [n, rederived, cut, torn] = line.slice(6).split(' ').map(Number);
          trial.ready = n;
          trial.repairs = [rederived ?? 0, cut ?? 0, torn ?? 0];
        }
        else if (line === 'done') trial.done = true;
        else trial.acks.push(Number(line));
      }
      resolve(trial);
    });
  });
}

describe('crash recovery (SIGKILL of a process running the engine)', () => {
  beforeAll(() => {
    if (!fs.existsSync(DIST)) {
      throw new Error(`${DIST} is missing: the crash test runs the built packages in a child process; run \`pnpm -s build\` at the repository root first`);
    }
    // tsc emits only what changed: compare each source with its own output.
    const stale = fs.readdirSync(SRC).filter((f) => {
      if (!f.endsWith('.ts')) return false;
      const out = path.join(path.dirname(DIST), f.replace(/\.ts$/, '.js'));
      return !fs.existsSync(out) || fs.statSync(path.join(SRC, f)).mtimeMs > fs.statSync(out).mtimeMs;
    });
    if (stale.length > 0) console.warn(`[engine tests] the crash test's child runs ${DIST}, older than src/${stale.join(', src/')}: run \`pnpm -s build\``);
  });

  it(`recovers every acknowledged command through ${TRIALS} random kills, with a whole outbox and the reference state`, async () => {
    const withAmends = amendsWork();
    if (!withAmends) console.warn('[engine tests] the codecs refuse amends with price 0: the crash workload runs without amends');
    const lines = generateWorkload({ ops: OPS, prefill: 1_000, seed: 2024, mix: [40, 25, 10, 5, 5, 5, 5, withAmends ? 5 : 0] });
    const commands: Command[] = lines.map((line, i) => commandFromLine(SYM, line, i));
    const work = tmpDir();
    const commandsFile = path.join(work, 'commands.jsonl');
    fs.writeFileSync(commandsFile, commands.map((c) => JSON.stringify(c)).join('\n') + '\n');

    const rnd = prng(0xc0ffee);
    let dirs = 0;
    let dataDir = path.join(work, `data-${dirs}`);
    let model = new RefModel();
    /** The command log's valid records after the last trial: what the next child must recover. */
    let logged = 0;
    /** The highest acknowledged seq in this data directory so far. */
    let floor = 0;
    const stats = {
      kills: 0,
      acks: 0,
      reopens: 0,
      rederived: 0,
      outboxBytesCut: 0,
      tornTails: 0,
      childRederived: 0,
      childOutboxBytesCut: 0,
      childTornTails: 0,
      killedBeforeReady: 0,
      finished: 0,
    };

    for (let t = 0; t < TRIALS; t++) {
      const afterReady = t % 2 === 1;
      const killAfter = afterReady ? Math.floor(rnd() * 200) : Math.floor(rnd() * 600);
      const trial = await runChild(dataDir, commandsFile, killAfter, afterReady);
      const what = `trial ${t} (kill ${killAfter} ms after ${afterReady ? 'ready' : 'spawn'})`;
      if (trial.signal !== 'SIGKILL' && !(trial.code === 0 && trial.done)) {
        expect.fail(`${what}: the child exited by itself with ${String(trial.code ?? trial.signal)}: ${trial.stderr}`);
      }
      if (trial.signal === 'SIGKILL') stats.kills++;
      if (trial.ready === undefined) stats.killedBeforeReady++;
      if (trial.done) stats.finished++;
      stats.childRederived += trial.repairs[0];
      stats.childOutboxBytesCut += trial.repairs[1];
      stats.childTornTails += trial.repairs[2];

      // The child recovered what the command log held, and acknowledged in order from there.
      if (trial.ready !== undefined) {
        expect(trial.ready, `${what}: the child recovered another number of commands than the command log holds`).toBe(logged);
        expect(trial.acks, `${what}: acknowledgements out of order`).toEqual(Array.from({ length: trial.acks.length }, (_v, i) => logged + i + 1));
      } else {
        expect(trial.acks).toEqual([]);
      }
      floor = Math.max(floor, trial.acks[trial.acks.length - 1] ?? 0);
      stats.acks += trial.acks.length;

      // The logs as the kill left them (read only): the acknowledged commands are in the command
      // log, and their events and CmdEnds in the outbox (a command is acknowledged once both are durable).
      const cmdLog = readCommandLog(cmdDirOf(dataDir, SYM), binaryCodec);
      logged = cmdLog.length;
      expect(logged, `${what}: acknowledged commands missing from the command log`).toBeGreaterThanOrEqual(floor);
      const checker = new OutboxChecker();
      for (const { msg: e, offset } of readOutbox(evDirOf(dataDir, SYM), binaryCodec)) checker.visit(e.type, e.seq, e.eventSeq, e.type === 'cmdEnd' ? e.events : 0, offset);
      expect(checker.problem, `${what}: the outbox as the kill left it`).toBeUndefined();
      expect(checker.commands, `${what}: acknowledged commands without their CmdEnd in the outbox`).toBeGreaterThanOrEqual(floor);

      // Every third trial, the last one and when the workload is used up, reopen in this process and
      // check the recovered state; otherwise the next child recovers from the logs as they are.
      const last = t === TRIALS - 1;
      if (t % 3 !== 2 && !last && logged < commands.length) continue;
      stats.reopens++;
      const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT });
      const actor = engine.actor(SYM) as SymbolActor;
      await engine.close();
      const report = actor.recovery;
      stats.rederived += report.rederived;
      stats.outboxBytesCut += report.outboxBytesCut;
      stats.tornTails += report.tornTails;
      expect(report.commands, `${what}: recovery found another number of commands than the command log holds`).toBe(logged);

      // The outbox is whole, and the state is the reference's on the recovered prefix.
      const got = summaryFromOutbox(evDirOf(dataDir, SYM), binaryCodec, actor.book, report.commands);
      expect(got.problem, `${what}: the outbox after recovery`).toBeUndefined();
      expect(model.ops).toBeLessThanOrEqual(report.commands);
      for (let i = model.ops; i < report.commands; i++) model.apply(lines[i] as string);
      expect(got.summary, `${what}: the state after recovering ${report.commands} commands`).toEqual(model.summary());
      // The command log holds exactly the workload's commands.
      expect(cmdLog.map((r) => r.msg)).toEqual(commands.slice(0, logged).map((c, i) => ({ ...c, seq: i + 1 })));

      // When the workload is used up, go on with a fresh data directory.
      if (logged === commands.length && !last) {
        dataDir = path.join(work, `data-${++dirs}`);
        model = new RefModel();
        logged = 0;
        floor = 0;
      }
    }
    console.log(
      `[crash test] ${TRIALS} trials: ${stats.kills} kills (${stats.killedBeforeReady} before the child was ready), ${stats.finished} finished, ` +
        `${stats.acks} acknowledgements, ${dirs + 1} data dirs; repairs by the children's recoveries: ` +
        `${stats.childRederived} commands derived again, ${stats.childOutboxBytesCut} outbox bytes cut, ${stats.childTornTails} torn tails; ` +
        `by the ${stats.reopens} reopenings in the test: ${stats.rederived}, ${stats.outboxBytesCut}, ${stats.tornTails}`,
    );
    expect(stats.kills).toBeGreaterThanOrEqual(TRIALS / 2);
    expect(stats.acks).toBeGreaterThan(0);
  });
});
