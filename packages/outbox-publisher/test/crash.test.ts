// Crash test: a publisher process (fixtures/publisher-child.mjs, running the built package) is
// killed with SIGKILL between publishing and committing its cursor; on restart it republishes from
// its cursor, and the JetStream stream (shared server, NATS_URL) ends up holding every event exactly
// once: counted, and read back as event sequence numbers 1..N in order, with ids and payloads.
// Without a NATS server the test is skipped with a warning, except under CI.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventOutbox, readCursor } from '../src/index.js';
import { EventWriter, range, removeTmpDirs, tmpDir, trade, uniqueTag } from './helpers.js';
import { deleteStreams, manager, NATS_URL, natsProblem, readStream, unavailable } from './nats-helpers.js';

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/publisher-child.mjs', import.meta.url));

const nats = unavailable(`NATS JetStream at ${NATS_URL} (publisher crash test)`, await natsProblem(NATS_URL), 'set NATS_URL to a server with JetStream');

interface Progress {
  acknowledgedOffset: number;
  committedOffset: number;
  lastEventSeq: number;
  published: number;
  duplicates: number;
  failures: number;
}

interface Run {
  last: Progress | undefined;
  done: (Progress & Record<string, unknown>) | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Runs the child; with `killWhen`, kills it with SIGKILL as soon as a progress line satisfies it
 * (or fails after `timeoutMs`); without, waits for it to finish.
 */
function runChild(args: { dir: string; cursorDir: string; prefix: string; subjects: string; commitIntervalMs: number; end: number }, killWhen: ((p: Progress) => boolean) | undefined, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, args.dir, args.cursorDir, args.prefix, args.subjects, String(args.commitIntervalMs), String(args.end)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NATS_URL },
    });
    const run: Run = { last: undefined, done: undefined, code: null, signal: null, stderr: '' };
    let buffered = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`publisher child did not ${killWhen ? 'reach the kill point' : 'finish'} within ${timeoutMs} ms; last progress ${JSON.stringify(run.last)}; stderr:\n${run.stderr}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      run.stderr = (run.stderr + s).slice(-10_000);
    });
    child.stdout.on('data', (s: string) => {
      buffered += s;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, ...rest] = line.split(' ');
        if (kind === 'progress') {
          const [acknowledgedOffset = 0, committedOffset = 0, lastEventSeq = 0, published = 0, duplicates = 0, failures = 0] = rest.map(Number);
          run.last = { acknowledgedOffset, committedOffset, lastEventSeq, published, duplicates, failures };
          if (killWhen && !killed && killWhen(run.last)) {
            killed = true;
            child.kill('SIGKILL');
          }
        } else if (kind === 'done') {
          run.done = JSON.parse(rest.join(' ')) as Run['done'];
        }
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      run.code = code;
      run.signal = signal;
      resolve(run);
    });
  });
}

// Under CI, a missing server is a failure, reported by this test.
const natsFailure = nats.failure;
if (natsFailure !== undefined) {
  it('has a NATS JetStream server (required under CI)', () => {
    expect.fail(natsFailure);
  });
}

describe.skipIf(nats.skip)('a publisher process killed with SIGKILL', () => {
  let nc: NatsConnection | undefined;
  let jsm: JetStreamManager | undefined;
  const streams: string[] = [];
  let outbox: EventOutbox | undefined;

  beforeAll(async () => {
    if (!existsSync(DIST)) {
      throw new Error(`${DIST} is missing: the crash test runs the built package in a child process; run \`pnpm build\` first`);
    }
    ({ nc, jsm } = await manager(NATS_URL));
  });

  afterAll(async () => {
    await outbox?.close().catch(() => undefined);
    if (jsm) await deleteStreams(jsm, streams);
    await nc?.close();
    removeTmpDirs();
  });

  it('between publish and cursor commit republishes on restart; the stream holds every event exactly once, in order', async () => {
    if (!nc || !jsm) throw new Error('no NATS connection');
    const tag = uniqueTag();
    const prefix = `T${tag}`;
    const subjects = `gx3test.${tag}.events`;
    const symbol = 'CRASH';
    const stream = `${prefix}_${symbol}`;
    streams.push(stream);
    const dir = tmpDir();
    const cursorDir = tmpDir();
    const o = EventOutbox.open(dir, { durability: 'batch', segmentSize: 1 << 20, maxRecordSize: 4096 });
    outbox = o;
    const w = new EventWriter(o);
    const base = { dir, cursorDir, prefix, subjects };
    const messages = async (): Promise<number> => {
      try {
        return (await (jsm as JetStreamManager).streams.info(stream)).state.messages;
      } catch {
        return 0;
      }
    };

    // Run 1: no cursor commit during the run (a one-hour interval); killed after some events were
    // acknowledged, i.e. published and stored, but before any commit.
    w.commands(symbol, 1000, () => 2);
    await o.sync();
    const run1 = await runChild({ ...base, commitIntervalMs: 3_600_000, end: 0 }, (p) => p.lastEventSeq >= 300);
    expect(run1.signal, run1.stderr).toBe('SIGKILL');
    const stored1 = await messages();
    const cursor1 = readCursor(cursorDir);
    expect(stored1).toBeGreaterThanOrEqual(300);
    expect(cursor1.offset).toBe(0); // killed between publish and cursor commit
    expect(stored1).toBeGreaterThan(cursor1.lastEventSeq);

    // Run 2: commits often; more events appended; killed somewhere in the middle.
    w.commands(symbol, 500, () => 2);
    await o.sync();
    const run2 = await runChild({ ...base, commitIntervalMs: 1, end: 0 }, (p) => p.lastEventSeq >= stored1 + 500);
    expect(run2.signal, run2.stderr).toBe('SIGKILL');
    expect(run2.last?.duplicates ?? 0).toBeGreaterThan(0); // it republished what run 1 had stored
    const stored2 = await messages();
    const cursor2 = readCursor(cursorDir);
    expect(stored2).toBeGreaterThanOrEqual(stored1 + 500);
    expect(stored2).toBeGreaterThanOrEqual(cursor2.lastEventSeq);

    // Run 3: runs to the end of the outbox and stops cleanly.
    w.commands(symbol, 500, () => 2);
    await o.sync();
    const end = o.durableOffset;
    const run3 = await runChild({ ...base, commitIntervalMs: 5, end }, undefined);
    expect(run3.code, run3.stderr).toBe(0);
    expect(run3.done, run3.stderr).toBeDefined();
    const done = run3.done as Progress;
    // Everything between its cursor and what the stream held was republished as duplicates.
    expect(done.duplicates).toBeGreaterThanOrEqual(stored2 - cursor2.lastEventSeq);
    expect(readCursor(cursorDir)).toMatchObject({ offset: end, lastEventSeq: w.events });

    const n = w.events;
    expect(n).toBe(4000);
    const info = await jsm.streams.info(stream);
    expect(info.state.messages).toBe(n);
    const stored = await readStream(nc, jsm, stream);
    expect(stored.map((m) => m.event.eventSeq)).toEqual(range(1, n));
    for (const m of stored) {
      expect(m.msgId).toBe(`${symbol}:${m.event.eventSeq}`);
      expect(m.subject).toBe(`${subjects}.${symbol}`);
      expect(m.event).toEqual(trade(symbol, m.event.seq, m.event.eventSeq));
    }
  });
});
