// The engine: one SymbolActor per configured symbol, each in its own directory under `dataDir`,
// and, when a bus is given, one publisher per symbol tailing its outbox.

import path from 'node:path';
import { codecByName, type Codec, type CodecName, type Command } from '@gx3/codecs';
import { Publisher, readCursor, writeCursor, type Bus, type PublisherOptions } from '@gx3/outbox-publisher';
import type { OrderBook } from '@gx3/orderbook';
import { makeDirectory, type Durability, type FileIO } from '@gx3/wal';
import { DataDirLock } from './data-lock.js';
import { EngineError } from './errors.js';
import { refusal, SymbolActor, type CommandOutcome, type Refusal, type SymbolConfig } from './symbol-actor.js';

export interface EngineOptions {
  readonly dataDir: string;
  readonly symbols: readonly SymbolConfig[];
  /** Default `batch` (group commit). */
  readonly durability?: Durability;
  /** Codec of both logs (default `binary`; `json` for reading the logs by eye). */
  readonly codec?: Codec | CodecName;
  /** Commands per batch at most (default 512). */
  readonly batchMax?: number;
  /** Mailbox capacity per symbol (default 65,536). */
  readonly mailboxSize?: number;
  /**
   * Commands per symbol taken and not yet durable, at most (queued, or applied and waiting for
   * their sync; default 4 x mailboxSize): beyond, DURABILITY_BACKLOG (a stalled disk stops intake).
   */
  readonly maxPending?: number;
  /** With durability `interval` (default 2 ms). */
  readonly syncIntervalMs?: number;
  /** Microseconds since the Unix epoch, for command timestamps. */
  readonly clock?: () => number;
  readonly segmentSize?: number;
  /** The file layer of the logs (tests inject I/O faults through it). */
  readonly io?: FileIO;
  /** Makes each symbol's book (default: an OrderBook over the symbol's band). */
  readonly bookFactory?: (config: SymbolConfig) => OrderBook;
  /** Publish each symbol's events to this bus. */
  readonly bus?: Bus;
  /** Called with the error of an actor's `onDurable` listener that throws (default: a process warning). */
  readonly onListenerError?: (err: unknown, symbol: string) => void;
  /**
   * Called once when a symbol's actor halts (an I/O error), with the HALTED error (its cause the
   * I/O error): for the operator's log. A throw is reported as a listener's (`onListenerError`).
   */
  readonly onHalt?: (err: EngineError, symbol: string) => void;
  /** Options of the publishers (window, timeouts, backoff). */
  readonly publisher?: Omit<PublisherOptions, 'dir' | 'bus' | 'outbox' | 'codec'>;
}

// A letter or digit first: a symbol names its directory in the data directory, so `.` and `..` are not symbols.
// 1-32 characters of A-Z 0-9 . _ -, the first a letter or digit, with no `.` at the end or beside
// another (a symbol ends its NATS subject, whose tokens the dots separate: `BTC.` or `A..B` would
// make an invalid subject).
const SYMBOL = /^(?=.{1,32}$)[A-Z0-9][A-Z0-9_-]*(?:\.[A-Z0-9_-]+)*$/;

/**
 * A publisher's cursor past the end of the recovered outbox: the outbox lost events that were
 * published (a power loss under durability `none`, which syncs nothing). The cursor goes back to the
 * outbox's end (else the publisher would skip the events of new commands, or read from the middle
 * of one of their records), and the outbox starts a new history: a bus that holds the lost events
 * (JetStream) then refuses the new ones (HISTORY_MISMATCH), whose ids are the lost events' ids,
 * instead of taking them for duplicates.
 */
function resetCursorAhead(evDir: string, cursorDir: string, actor: SymbolActor): void {
  const cursor = readCursor(cursorDir);
  if (cursor.offset <= actor.durableEventOffset) return;
  // A cursor of another history (kept in a cursorDir while the data directory was replaced): its
  // offset says nothing of this outbox, and the publisher sets it aside (publishing from the start).
  // (A cursor of the history before this outbox's last renewal is its own: a crash between the
  // renewal below and the cursor's write leaves it so.)
  if (cursor.history !== undefined && cursor.history !== actor.outbox.history && cursor.history !== actor.outbox.previousHistory) return;
  // A new history first, then the cursor written for it: a crash between the two leaves the old
  // cursor, still ahead, and the next open does this again.
  actor.outbox.renewHistory();
  writeCursor(cursorDir, { offset: actor.durableEventOffset, lastEventSeq: actor.lastEventSeq, commits: cursor.commits + 1, history: actor.outbox.history });
  actor.cursorReset = { from: cursor.offset, to: actor.durableEventOffset };
}

/** Names the engine keeps in the data directory beside the symbols' directories (the lock file and its temporary files). */
export function isReservedName(symbol: string): boolean {
  return symbol === 'LOCK' || symbol.startsWith('LOCK.');
}

export const defaultClock = (): number => Math.floor((performance.timeOrigin + performance.now()) * 1000);

export class Engine {
  readonly dataDir: string;
  readonly codec: Codec;
  private readonly actors = new Map<string, SymbolActor>();
  private readonly publishers: Publisher[] = [];
  private readonly publisherOf = new Map<Publisher, SymbolActor>();
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly lock: DataDirLock;

  /** Opens the actors and starts the publishers; what it made is in `made` if it throws (Engine.open undoes it). */
  private constructor(options: EngineOptions, checked: CheckedOptions, lock: DataDirLock, made: { actors: SymbolActor[]; publishers: Publisher[] }) {
    this.dataDir = options.dataDir;
    this.codec = checked.codec;
    const { durability, batchMax, mailboxSize, maxPending } = checked;
    this.lock = lock;
    {
      for (const config of options.symbols) {
        if (!SYMBOL.test(config.symbol)) throw new EngineError('INVALID_CONFIG', `symbol ${JSON.stringify(config.symbol)} must be 1-32 characters of A-Z 0-9 . _ -, the first a letter or digit, with no . at the end or beside another`);
        if (isReservedName(config.symbol)) throw new EngineError('INVALID_CONFIG', `symbol ${config.symbol} names the data directory's lock file (LOCK, LOCK.*): choose another symbol`);
        if (this.actors.has(config.symbol)) throw new EngineError('INVALID_CONFIG', `symbol ${config.symbol} is configured twice`);
        const actor = SymbolActor.open(config, {
          dir: path.join(this.dataDir, config.symbol),
          durability,
          codec: this.codec,
          batchMax,
          mailboxSize,
          maxPending,
          syncIntervalMs: options.syncIntervalMs ?? 2,
          clock: options.clock ?? defaultClock,
          ...(options.segmentSize === undefined ? {} : { segmentSize: options.segmentSize }),
          ...(options.io === undefined ? {} : { io: options.io }),
          ...(options.bookFactory === undefined ? {} : { bookFactory: options.bookFactory }),
          ...(options.onListenerError === undefined ? {} : { onListenerError: options.onListenerError }),
          ...(options.onHalt === undefined ? {} : { onHalt: options.onHalt }),
        });
        made.actors.push(actor);
        this.actors.set(config.symbol, actor);
      }
    }
    if (options.bus) {
      for (const actor of this.actors.values()) {
        const evDir = path.join(this.dataDir, actor.symbol, 'ev');
        // Each symbol's cursor in its own place: a cursorDir given is the parent of one per symbol.
        const given = options.publisher?.cursorDir;
        const cursorDir = given === undefined ? evDir : path.join(given, actor.symbol);
        if (given !== undefined) {
          try {
            makeDirectory(cursorDir);
          } catch (err) {
            throw new EngineError('INVALID_CONFIG', `publisher.cursorDir: cannot create ${cursorDir}: ${(err as Error).message}`, { cause: err, option: 'publisher' });
          }
        }
        resetCursorAhead(evDir, cursorDir, actor);
        // Bounded by the actor's durable commands, not by the outbox alone (see durableEventOffset).
        let p: Publisher;
        try {
          p = new Publisher({ ...options.publisher, cursorDir, dir: evDir, bus: options.bus, outbox: actor.publishable });
        } catch (err) {
          throw new EngineError('INVALID_CONFIG', `publisher options: ${(err as Error).message}`, { cause: err, option: 'publisher' });
        }
        p.start();
        made.publishers.push(p);
        this.publishers.push(p);
        this.publisherOf.set(p, actor);
      }
    }
  }

  /** Opens every symbol's logs and recovers its book (torn tails repaired, missing events derived again). */
  static async open(options: EngineOptions): Promise<Engine> {
    const checked = checkOptions(options);
    const lock = await DataDirLock.acquire(options.dataDir);
    // From here on, a failure stops what was started, closes what was opened and releases the lock
    // before it reaches the caller (who may then open the directory again at once).
    const made = { actors: [] as SymbolActor[], publishers: [] as Publisher[] };
    try {
      return new Engine(options, checked, lock, made);
    } catch (err) {
      await Promise.allSettled(made.publishers.map((p) => p.stop()));
      await Promise.allSettled(made.actors.map((a) => a.close()));
      lock.release();
      throw err;
    }
  }

  get symbols(): string[] {
    return [...this.actors.keys()];
  }

  actor(symbol: string): SymbolActor | undefined {
    return this.actors.get(symbol);
  }

  /** The publisher of `symbol`, when a bus was given. */
  publisher(symbol: string): Publisher | undefined {
    for (const [p, a] of this.publisherOf) if (a.symbol === symbol) return p;
    return undefined;
  }

  /** The publisher of each symbol, when a bus was given. */
  get publisherList(): readonly Publisher[] {
    return this.publishers;
  }

  /** Routes a command to its symbol's actor: its sequence number, or a refusal. */
  trySubmit(cmd: Command): number | Refusal {
    if (this.closed) return CLOSED;
    if (typeof cmd !== 'object' || cmd === null) return NOT_AN_OBJECT;
    const actor = this.actors.get(cmd.symbol);
    if (!actor) return refusal('UNKNOWN_SYMBOL', `unknown symbol ${JSON.stringify(cmd.symbol)}`);
    return actor.trySubmit(cmd);
  }

  /** Routes a command and resolves with its events once durable. */
  submit(cmd: Command): Promise<CommandOutcome> {
    if (this.closed) return Promise.reject(new EngineError('CLOSED', 'the engine is closed'));
    if (typeof cmd !== 'object' || cmd === null) return Promise.reject(new EngineError(NOT_AN_OBJECT.code, NOT_AN_OBJECT.message));
    const actor = this.actors.get(cmd.symbol);
    if (!actor) return Promise.reject(new EngineError('UNKNOWN_SYMBOL', `unknown symbol ${JSON.stringify(cmd.symbol)}`));
    return actor.submit(cmd);
  }

  /** Stops intake, drains the mailboxes, syncs, stops the publishers and closes the logs. */
  close(): Promise<void> {
    // A second call waits for the first: the directory is unlocked when either returns.
    this.closing ??= (async () => {
      this.closed = true;
      try {
        await this.closeAll();
      } finally {
        this.lock.release();
      }
    })();
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    await Promise.all([...this.actors.values()].map((a) => a.close()));
    // Let each publisher catch up with its outbox (bounded), then stop it.
    await Promise.all(
      this.publishers.map(async (p) => {
        const actor = this.publisherOf.get(p);
        if (actor && !actor.halted) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            p.acknowledged(actor.durableEventOffset).catch(() => undefined), // STOPPED: stopped meanwhile
            new Promise((r) => {
              timer = setTimeout(r, CATCH_UP_MS);
            }),
          ]);
          clearTimeout(timer);
        }
        await p.stop();
      }),
    );
  }
}

interface CheckedOptions {
  readonly codec: Codec;
  readonly durability: Durability;
  readonly batchMax: number;
  readonly mailboxSize: number;
  readonly maxPending: number;
}

/** The options' values, checked; creates the data directory. Throws EngineError INVALID_CONFIG. */
function checkOptions(options: EngineOptions): CheckedOptions {
  if (typeof options !== 'object' || options === null) throw new EngineError('INVALID_CONFIG', 'the options must be an object');
  let codec: Codec;
  try {
    codec = typeof options.codec === 'object' && options.codec !== null ? options.codec : codecByName(options.codec ?? 'binary');
  } catch (err) {
    throw new EngineError('INVALID_CONFIG', `codec: ${(err as Error).message}`, { cause: err, option: 'codec' });
  }
  if (!isCodec(codec)) {
    throw new EngineError('INVALID_CONFIG', 'codec must be "binary", "json" or a Codec of either (name, maxLength, encodedLength, encode, encodeToBuffer, decode)', { option: 'codec' });
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') throw new EngineError('INVALID_CONFIG', `clock must be a function returning microseconds, got ${typeof options.clock}`, { option: 'clock' });
  if (!Array.isArray(options.symbols)) throw new EngineError('INVALID_CONFIG', 'symbols must be an array of { symbol, minPrice?, maxPrice?, maxQty? }', { option: 'symbols' });
  for (const config of options.symbols as unknown[]) {
    if (typeof config !== 'object' || config === null || typeof (config as { symbol?: unknown }).symbol !== 'string') {
      throw new EngineError('INVALID_CONFIG', `each symbol must be an object with a string symbol, got ${describe(config)}`, { option: 'symbols' });
    }
  }
  const durability = options.durability ?? 'batch';
  if (!['none', 'batch', 'interval'].includes(durability)) throw new EngineError('INVALID_CONFIG', `durability must be none, batch or interval, got ${durability}`, { option: 'durability' });
  const batchMax = options.batchMax ?? 512;
  const mailboxSize = options.mailboxSize ?? 65_536;
  if (!Number.isSafeInteger(batchMax) || batchMax < 1) throw new EngineError('INVALID_CONFIG', `batchMax must be a positive integer, got ${batchMax}`, { option: 'batchMax' });
  if (!Number.isSafeInteger(mailboxSize) || mailboxSize < 1 || mailboxSize > 1 << 24) {
    throw new EngineError('INVALID_CONFIG', `mailboxSize must be an integer in 1..2^24, got ${mailboxSize}`, { option: 'mailboxSize' });
  }
  if (options.syncIntervalMs !== undefined && !(Number.isSafeInteger(options.syncIntervalMs) && options.syncIntervalMs >= 1 && options.syncIntervalMs <= 60_000)) {
    throw new EngineError('INVALID_CONFIG', `syncIntervalMs must be an integer in 1..60000, got ${options.syncIntervalMs}`, { option: 'syncIntervalMs' });
  }
  if (options.symbols.length === 0) throw new EngineError('INVALID_CONFIG', 'no symbols configured');
  try {
    makeDirectory(options.dataDir);
  } catch (err) {
    throw new EngineError('INVALID_CONFIG', `cannot create ${options.dataDir}: ${(err as Error).message}`, { cause: err, option: 'dataDir' });
  }
  const maxPending = options.maxPending ?? 4 * mailboxSize;
  if (!Number.isSafeInteger(maxPending) || maxPending < 1 || maxPending > 1 << 28) {
    throw new EngineError('INVALID_CONFIG', `maxPending must be an integer in 1..2^28, got ${String(maxPending)}`, { option: 'maxPending' });
  }
  return { codec, durability, batchMax, mailboxSize, maxPending };
}

/** A codec object the engine can log with: one of the two codecs' shape. */
function isCodec(c: unknown): c is Codec {
  const k = c as Partial<Record<keyof Codec, unknown>>;
  return (
    typeof c === 'object' &&
    c !== null &&
    (k.name === 'binary' || k.name === 'json') &&
    Number.isSafeInteger(k.maxLength) &&
    (k.maxLength as number) > 0 &&
    typeof k.encodedLength === 'function' &&
    typeof k.encode === 'function' &&
    typeof k.encodeToBuffer === 'function' &&
    typeof k.decode === 'function'
  );
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? `${typeof v} ${String(v)}` : typeof v;
  return 'an object without a string symbol';
}

const CLOSED = refusal('CLOSED', 'the engine is closed');
const NOT_AN_OBJECT = refusal('INVALID_COMMAND', 'a command must be an object');
/** How long close() lets a publisher catch up with its outbox. */
const CATCH_UP_MS = 5000;
