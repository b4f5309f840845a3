// Helpers of the NATS tests: whether a server can be reached (skip with a warning, or fail under
// CI), reading a stream back in order, and a nats-server process of our own that can be killed and
// started again on the same port and store directory.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { codecByName, type Event } from '@gx3/codecs';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { NatsBusOptions } from '../src/index.js';
import { sleep, uniqueTag } from './helpers.js';

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
export const IN_CI = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** Why a JetStream-enabled server cannot be used at `url`, or undefined when it can. */
export async function natsProblem(url: string): Promise<string | undefined> {
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: url, timeout: 2000, reconnect: false });
    const jsm = await jetstreamManager(nc, { timeout: 2000 });
    await jsm.getAccountInfo();
    return undefined;
  } catch (err) {
    return `${url}: ${(err as Error).message}`;
  } finally {
    await nc?.close().catch(() => undefined);
  }
}

export interface Gate {
  /** Whether the tests that need it cannot run (then they are skipped). */
  readonly skip: boolean;
  /** Under CI, why that is a failure (a test of the file reports it). */
  readonly failure: string | undefined;
}

/**
 * Decides what to do when `what` is unusable (`problem`): without CI, skip after a visible
 * warning; under CI, skip the tests that need it and fail one that says why.
 */
export function unavailable(what: string, problem: string | undefined, hint: string): Gate {
  if (problem === undefined) return { skip: false, failure: undefined };
  if (IN_CI) return { skip: true, failure: `${what} is required under CI but unavailable: ${problem}` };
  console.warn(`SKIPPED: ${what} tests: ${problem} (${hint}; under CI this is a failure)`);
  return { skip: true, failure: undefined };
}

/** A management connection. */
export async function manager(url: string): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const nc = await connect({ servers: url, timeout: 5000 });
  const jsm = await jetstreamManager(nc);
  return { nc, jsm };
}

export interface StoredEvent {
  seq: number;
  subject: string;
  msgId: string | undefined;
  /** The Gx3-History header ('' when the message has none). */
  history: string;
  event: Event;
}

/** Every message of `stream`, in stream order, decoded (through an ordered consumer). */
export async function readStream(nc: NatsConnection, jsm: JetStreamManager, stream: string): Promise<StoredEvent[]> {
  const info = await jsm.streams.info(stream);
  const count = info.state.messages;
  const out: StoredEvent[] = [];
  if (count === 0) return out;
  const codec = codecByName('binary');
  const consumer = await jetstream(nc).consumers.get(stream);
  const messages = await consumer.consume({ max_messages: 512 });
  try {
    for await (const m of messages) {
      out.push({ seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), history: m.headers?.get('Gx3-History') ?? '', event: codec.decode(m.data) as Event });
      if (m.seq >= info.state.last_seq) break;
    }
  } finally {
    messages.stop();
  }
  return out;
}

/** Deletes the streams, ignoring those already gone. */
export async function deleteStreams(jsm: JetStreamManager, names: Iterable<string>): Promise<void> {
  for (const name of names) {
    try {
      await jsm.streams.delete(name);
    } catch {
      // not there
    }
  }
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}

/** Whether something accepts TCP connections on the port. */
function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      s.destroy();
      resolve(false);
    });
  });
}

export function natsServerProblem(): string | undefined {
  try {
    fs.accessSync(NATS_SERVER_BIN, fs.constants.X_OK);
    return undefined;
  } catch (err) {
    return `${NATS_SERVER_BIN} is not executable: ${(err as Error).message}`;
  }
}

/** A nats-server of our own with JetStream, on a fixed port and store directory, that can be killed and started again. */
export class NatsServer {
  private proc: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  log = '';
  starts = 0;

  constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  /** Starts the server and waits until JetStream answers. */
  async start(timeoutMs = 15_000): Promise<void> {
    if (this.proc) throw new Error('already running');
    const proc = spawn(NATS_SERVER_BIN, ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.starts++;
    this.proc = proc;
    const keep = (b: Buffer): void => {
      this.log = (this.log + b.toString('utf8')).slice(-20_000);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      proc.once('exit', () => {
        resolve();
      });
      proc.once('error', (err) => {
        this.log += `\nspawn error: ${err.message}`;
        resolve();
      });
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`nats-server exited at start:\n${this.log}`);
      if (await accepting(this.port)) {
        const problem = await natsProblem(this.url);
        if (problem === undefined) return;
      }
      if (Date.now() > deadline) throw new Error(`nats-server did not start within ${timeoutMs} ms:\n${this.log}`);
      await sleep(20);
    }
  }

  /** Kills the server with `signal` and waits until it has exited. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    proc.kill(signal);
    await this.exited;
    this.proc = undefined;
  }
}

/**
 * The options of a NatsJetStreamBus on streams of their own (`<tag><unique>_<SYMBOL>`, in memory),
 * with a 1 s acknowledgement timeout and, if given, that duplicate window.
 */
export function testStreamOptions(tag: string, duplicateWindowMs?: number): NatsBusOptions {
  const prefix = `${tag}${uniqueTag()}`;
  return { streamPrefix: prefix, subjectPrefix: `${prefix}.ev`, storage: 'memory', ackTimeoutMs: 1000, ...(duplicateWindowMs === undefined ? {} : { duplicateWindowMs }) };
}
