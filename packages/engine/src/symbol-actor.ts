// One symbol's single writer. Commands enter a bounded ring mailbox, get their sequence number and
// timestamp there, and are processed in batches of up to `batchMax` on the event loop: each command
// is appended to the command log, applied to the book, and its events and CmdEnd appended to the
// outbox. At the end of a batch both logs are flushed; the batch is acknowledged once both logs are
// durable per the durability mode. With `batch` durability the two logs sync concurrently and the
// next batch is processed while they do (group commit: the log coalesces the syncs requested
// meanwhile into one). An I/O error halts the actor: it acknowledges nothing more and refuses
// every command until the engine is restarted (which recovers from the logs).

import path from 'node:path';
import type { Codec, Command, Event } from '@gx3/codecs';
import { BinaryCodec, DecodedMessage } from '@gx3/codecs';
import { OrderBook } from '@gx3/orderbook';
import { EventOutbox, type OutboxSource } from '@gx3/outbox-publisher';
import { listSegments, nodeFileIO, truncateLog, WalError, WalReader, WalRecord, WalWriter, type Durability, type FileIO, type SegmentRef } from '@gx3/wal';
import { EngineSink } from './event-sink.js';
import { EngineError, type EngineErrorCode } from './errors.js';
import { checkLimits, keepLimits } from './symbol-limits.js';
import { checkLogsCodec } from './logs-codec.js';
import { SIDE_CODE, STP_CODE, TIF_CODE } from './mapping.js';
import { MailboxSlots } from './mailbox-slots.js';

export interface SymbolConfig {
  readonly symbol: string;
  /** Price band in ticks (default 1 .. 1,000,000,000). */
  readonly minPrice?: number;
  readonly maxPrice?: number;
  /** Largest order quantity (default 2^48). */
  readonly maxQty?: number;
  /** Order slots allocated up front (default 65,536). */
  readonly initialOrders?: number;
}

export interface ActorOptions {
  /** The symbol's directory: `cmd/` (command log) and `ev/` (outbox) live in it. */
  readonly dir: string;
  readonly durability: Durability;
  readonly codec: Codec;
  readonly batchMax: number;
  /** Mailbox capacity: the commands the mailbox takes (its ring is the next power of two). */
  readonly mailboxSize: number;
  /** Commands taken and not yet durable, at most (beyond: DURABILITY_BACKLOG). */
  readonly maxPending: number;
  readonly syncIntervalMs: number;
  /** Microseconds since the Unix epoch. */
  readonly clock: () => number;
  readonly segmentSize?: number;
  /** The file layer of both logs (tests inject I/O faults through it). */
  readonly io?: FileIO;
  /** Makes the book (default: an OrderBook over the symbol's band). */
  readonly bookFactory?: (config: SymbolConfig) => OrderBook;
  /** Called with the error of an `onDurable` listener that throws (default: a process warning). */
  readonly onListenerError?: (err: unknown, symbol: string) => void;
  /** Called once when the actor halts, with the HALTED error (a throw goes to `onListenerError`). */
  readonly onHalt?: (err: EngineError, symbol: string) => void;
}

/** A typed refusal of `trySubmit` (a preallocated constant per code). */
export interface Refusal {
  readonly ok: false;
  readonly code: EngineErrorCode;
  readonly message: string;
}

export interface CommandOutcome {
  readonly seq: number;
  readonly events: Event[];
}

export interface RecoveryReport {
  /** Commands replayed from the command log. */
  readonly commands: number;
  /** Commands whose events were missing from the outbox and were derived again. */
  readonly rederived: number;
  /** Outbox bytes cut because the command log did not cover them. */
  readonly outboxBytesCut: number;
  /** Torn tails repaired on open (command log, outbox). */
  readonly tornTails: number;
  /** How long opening and recovering took, in milliseconds. */
  readonly millis: number;
}

interface Waiter {
  resolve: (outcome: CommandOutcome) => void;
  reject: (err: Error) => void;
}

interface PendingAck {
  seq: number;
  waiter: Waiter;
  events: Event[];
}

interface BatchMark {
  seq: number;
  cmdOffset: number;
  evOffset: number;
}

export const refusal = (code: EngineErrorCode, message: string): Refusal => Object.freeze({ ok: false, code, message });
const NO_EVENTS: Event[] = [];
const FULL = refusal('MAILBOX_FULL', 'the mailbox is full: retry after the actor catches up');
const CLOSED = refusal('CLOSED', 'the engine is closing');
const BACKLOG = refusal('DURABILITY_BACKLOG', 'maxPending commands taken are not durable yet (the disk is behind): retry once more are durable (waitForDurable)');
const NOT_AN_OBJECT = refusal('INVALID_COMMAND', 'a command must be an object');
const NESTED = refusal('INVALID_COMMAND', 'a command of this symbol was submitted while another was being logged (from a field getter of the command, or the clock)');

export class SymbolActor {
  readonly symbol: string;
  readonly book: OrderBook;
  readonly outbox: EventOutbox;
  /**
   * Set when the publisher's cursor was past the end of the recovered outbox and was moved back to
   * it (the outbox then started a new history): events the bus got were lost (see Engine).
   */
  cursorReset: { readonly from: number; readonly to: number } | undefined = undefined;
  readonly cmdLog: WalWriter;
  readonly recovery: RecoveryReport;

  private readonly codec: Codec;
  /** The codec when it is the binary one (commands are read back from the log without allocating). */
  private readonly binary: BinaryCodec | undefined;
  private readonly readBack = new DecodedMessage();
  private readonly sink: EngineSink;
  private readonly clock: () => number;
  private readonly listenerError: (err: unknown) => void;
  private readonly onHalt: ((err: EngineError, symbol: string) => void) | undefined;
  private readonly batchMax: number;
  private readonly durability: Durability;
  private readonly mask: number;
  /** Commands the mailbox takes (mailboxSize; the ring itself is the next power of two). */
  private readonly capacity: number;
  private readonly maxPending: number;
  /** The mailbox's copy of each command, as logged. */
  private readonly cmds: MailboxSlots;
  private readonly waiting: (Waiter | undefined)[];
  /** Per mailbox slot: the command log's offset after the command's record. */
  private readonly cmdEnds: Float64Array;
  private head = 0;
  private maxOrderId = 0;
  /**
   * The latest command timestamp logged (recovered from the command log): a timestamp the actor
   * assigns is never below it, so that a symbol's event times never go back, even when the clock
   * does (a wall clock stepped back between two runs, a clock of the caller's).
   */
  private maxTs = 0;
  private tail = 0;
  private lastSeq: number;
  private processed: number;
  private durable: number;
  /** The outbox offset after the events of the last durable command. */
  private durableEv: number;
  private scheduled = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private closedDone = false;
  /**
   * Above 0 while a command is being enqueued or a batch processed. A log can advance its durable
   * offset in the middle of either (a segment roll syncs the old segment), and the durable listeners
   * it would then reach are user code that may submit again: such a notification waits for a microtask.
   */
  private busy = 0;
  private checkQueued = false;
  private readonly logDurable = (): void => {
    if (this.busy === 0) {
      this.checkDurable();
      return;
    }
    if (this.checkQueued) return;
    this.checkQueued = true;
    queueMicrotask(() => {
      this.checkQueued = false;
      this.checkDurable();
    });
  };
  private haltError: EngineError | undefined;
  private haltRefusal: Refusal | undefined;
  private acks: PendingAck[] = [];
  private marks: BatchMark[] = [];
  private processedWaiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private durableWaiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private durableListeners: ((seq: number) => void)[] = [];
  /** The durable seq the listeners were last told of, and whether they are being told now. */
  private notified = 0;
  private notifying = false;
  /** A command is being logged (enqueue): another of this symbol is refused meanwhile. */
  private logging = false;

  private constructor(config: SymbolConfig, options: ActorOptions) {
    this.symbol = config.symbol;
    this.codec = options.codec;
    this.binary = options.codec instanceof BinaryCodec ? options.codec : undefined;
    this.clock = options.clock;
    const report = options.onListenerError;
    this.listenerError = (err) => {
      const warn = (what: string, e: unknown): void => {
        process.emitWarning(`${what} of ${this.symbol} threw: ${e instanceof Error ? e.message : String(e)}`, 'ListenerError');
      };
      if (!report) {
        warn('an onDurable listener', err);
        return;
      }
      try {
        report(err, this.symbol);
      } catch (reportErr) {
        // The reporter's own failure must not stop the other listeners or the actor.
        warn('onListenerError', reportErr);
      }
    };
    this.onHalt = options.onHalt;
    this.batchMax = options.batchMax;
    this.durability = options.durability;
    // The ring is a power of two; the mailbox takes `mailboxSize` commands.
    this.capacity = options.mailboxSize;
    this.maxPending = options.maxPending;
    let cap = 1;
    while (cap < options.mailboxSize) cap *= 2;
    this.mask = cap - 1;
    this.cmds = new MailboxSlots(cap, config.symbol);
    this.waiting = new Array<Waiter | undefined>(cap).fill(undefined);
    this.cmdEnds = new Float64Array(cap);

    const cmdDir = path.join(options.dir, 'cmd');
    const evDir = path.join(options.dir, 'ev');
    const limits = { minPrice: config.minPrice ?? 1, maxPrice: config.maxPrice ?? 1_000_000_000, maxQty: config.maxQty ?? 2 ** 48 };
    // Before anything is opened: limits no book can have are a configuration error, not a failed
    // recovery, and leave no logs behind.
    let book: OrderBook;
    try {
      book = options.bookFactory
        ? options.bookFactory(config)
        : new OrderBook({ minPrice: limits.minPrice, maxPrice: limits.maxPrice, maxQty: limits.maxQty, initialOrders: config.initialOrders ?? 65_536 });
    } catch (err) {
      throw new EngineError('INVALID_CONFIG', `symbol ${config.symbol}: ${(err as Error).message}`, { cause: err });
    }
    // Before anything is opened or replayed: the log is replayed under the limits it was written with.
    checkLimits(config.symbol, options.dir, limits);
    // And with the codec it was written with (read with the other, it looked like a damaged log).
    checkLogsCodec(config.symbol, options.io ?? nodeFileIO, cmdDir, evDir, options.codec.name);
    const walOptions = {
      durability: options.durability,
      syncIntervalMs: options.syncIntervalMs,
      // A clean close leaves a marker of where each log ends, so that the next open need not scan
      // the last segments (a crash leaves none: the open then scans and repairs as before).
      cleanClose: true,
      ...(options.segmentSize === undefined ? {} : { segmentSize: options.segmentSize }),
      ...(options.io === undefined ? {} : { io: options.io }),
    };
    const started = performance.now();
    const io = options.io ?? nodeFileIO;
    try {
      this.cmdLog = WalWriter.open(cmdDir, walOptions);
    } catch (err) {
      // Log options the logs cannot use (a segment size below the largest record, a record size
      // below the records the log holds): the configuration, not the data.
      if (err instanceof WalError && err.code === 'INVALID_OPTIONS') {
        throw new EngineError('INVALID_CONFIG', `symbol ${config.symbol}: ${err.message}`, { cause: err, option: 'segmentSize' });
      }
      // A damaged command log found by the open's check of its last segment (a clean close marker
      // skips that check, and the replay below finds it instead): a failed recovery either way, as
      // for the outbox.
      throw new EngineError('RECOVERY_FAILED', `cannot recover ${this.symbol} from ${options.dir}: ${(err as Error).message}`, { cause: err });
    }
    let tornTails = this.cmdLog.repaired ? 1 : 0;
    let outbox: EventOutbox | undefined;
    try {
      // The outbox, its torn tail repaired by opening it, and its last CmdEnd (found from the end).
      outbox = EventOutbox.open(evDir, { ...walOptions, codec: this.codec });
      if (outbox.log.repaired) tornTails++;
      const last = lastCmdEnd(io, evDir, this.codec, outbox.log.tailRecordOffset);
      // Events after the last CmdEnd belong to a command whose events were not all written: cut
      // them (the command is derived again from the command log below).
      let cut = 0;
      if (outbox.log.nextOffset > last.offset) {
        outbox.log.closeSync();
        cut += truncateLog(evDir, last.offset, { io });
        outbox = EventOutbox.open(evDir, { ...walOptions, codec: this.codec });
      }
      this.sink = new EngineSink(this.symbol, outbox, 0);
      this.book = book;
      this.book.setSink(this.sink);

      // Replay the command log into the fresh book; derive again the events the outbox is missing.
      let commands = 0;
      let rederived = 0;
      // Opening the command log checked its last segment: the replay checks the CRCs of the others.
      // Bounded by the log's end as the open found it: a record that cannot be read below it (a
      // zeroed header in a log whose clean-close marker spared the open's scan) is corruption, not
      // the end of the data.
      const cmdEnd = this.cmdLog.nextOffset;
      const reader = new WalReader(cmdDir, { io, verifiedFrom: this.cmdLog.verifiedFrom, end: () => cmdEnd });
      const rec = new WalRecord();
      const binary = this.codec instanceof BinaryCodec ? this.codec : undefined;
      const scratch = new DecodedMessage();
      try {
        this.sink.writing = last.seq === 0;
        for (let r = reader.next(rec); r; r = reader.next(rec)) {
          const cmd = binary
            ? (binary.decodeInto(r.buf, r.start, r.end - r.start, scratch) as unknown as Command)
            : (this.codec.decode(r.buf.subarray(r.start, r.end)) as Command);
          if (cmd.seq !== commands + 1) {
            throw new EngineError('RECOVERY_FAILED', `${cmdDir}: command ${commands + 1} expected at offset ${r.offset}, found seq ${cmd.seq}`);
          }
          commands++;
          if ((cmd.type === 'limit' || cmd.type === 'market') && cmd.orderId > this.maxOrderId) this.maxOrderId = cmd.orderId;
          if (cmd.ts > this.maxTs) this.maxTs = cmd.ts;
          if (this.sink.writing) rederived++;
          this.apply(cmd, false);
          if (cmd.seq === last.seq) {
            checkEventSeq(last.seq, last.eventSeq, this.sink.eventSeq);
            this.sink.writing = true;
          }
        }
      } finally {
        reader.close();
      }

      // The outbox ahead of the command log (the two logs sync concurrently, so a power loss can
      // leave it so): cut it back to the last command the command log holds. Those events were never
      // acknowledged.
      if (commands < last.seq) {
        outbox.log.closeSync();
        const covered = lastCmdEndCovered(io, evDir, this.codec, commands);
        checkEventSeq(covered.seq, covered.eventSeq, this.sink.eventSeq);
        cut += truncateLog(evDir, covered.offset, { io });
        outbox = EventOutbox.open(evDir, { ...walOptions, codec: this.codec });
        this.sink.outbox = outbox;
        this.sink.writing = true;
      }
      this.outbox = outbox;
      outbox.log.syncNow();
      keepLimits(options.dir, limits);
      this.lastSeq = commands;
      this.processed = commands;
      this.durable = commands;
      // Recovery cut whatever the command log does not cover: all of the outbox is publishable.
      this.durableEv = outbox.log.durableOffset;
      this.recovery = { commands, rederived, outboxBytesCut: cut, tornTails, millis: performance.now() - started };
    } catch (err) {
      this.cmdLog.closeSync();
      outbox?.log.closeSync();
      if (err instanceof EngineError) throw err;
      throw new EngineError('RECOVERY_FAILED', `cannot recover ${this.symbol} from ${options.dir}: ${(err as Error).message}`, { cause: err });
    }
    this.cmdLog.onDurable(this.logDurable);
    // A log that fails on its own (an interval sync, a roll) halts the actor too.
    this.cmdLog.onFailure((err) => {
      this.halt(err);
    });
    this.outbox.log.onFailure((err) => {
      this.halt(err);
    });
    this.outbox.onDurable(this.logDurable);
  }

  /** Opens the symbol's logs in `options.dir` and recovers its book from them. */
  static open(config: SymbolConfig, options: ActorOptions): SymbolActor {
    return new SymbolActor(config, options);
  }

  /** The sequence number of the last command accepted into the mailbox. */
  get lastSubmittedSeq(): number {
    return this.lastSeq;
  }

  /** Every command up to this sequence number has been applied to the book. */
  get processedSeq(): number {
    return this.processed;
  }

  /** Every command up to this sequence number is durable and acknowledged. */
  get durableSeq(): number {
    return this.durable;
  }

  /**
   * The outbox offset after the events of the last durable command (`durableSeq`): what a reader
   * of the outbox (a publisher, a market-data feed) may take as final. The outbox's own durable
   * offset can be ahead of it: the two logs sync concurrently, and the outbox may roll (and sync)
   * in the middle of a batch, so its events can be durable before their commands are; if the
   * command log then fails, those events are cut by the next recovery and derived again.
   * Advances with `onDurable`.
   */
  get durableEventOffset(): number {
    return this.durableEv;
  }

  /** The event sequence number of the last event applied (0: none yet). */
  get lastEventSeq(): number {
    return this.sink.eventSeq;
  }

  /**
   * The outbox as a publisher in this process should tail it: its codec, and `durableEventOffset`
   * as the end of what may be published, advancing with `onDurable`.
   */
  get publishable(): OutboxSource {
    const codec = this.codec;
    const offset = (): number => this.durableEv;
    const onDurable = (listener: (offset: number) => void): (() => void) =>
      this.onDurable(() => {
        listener(this.durableEv);
      });
    return {
      codec,
      get durableOffset() {
        return offset();
      },
      onDurable,
    };
  }

  /**
   * The highest order id of any limit or market command accepted into the mailbox or recovered
   * from the command log (0: none): a gateway that assigns order ids continues from it.
   */
  get lastOrderId(): number {
    return this.maxOrderId;
  }

  /** Commands waiting in the mailbox. */
  get queued(): number {
    return this.tail - this.head;
  }

  /** The error that halted the actor, if it halted. */
  get halted(): EngineError | undefined {
    return this.haltError;
  }

  /**
   * Enqueues a command: returns its sequence number, or a refusal (MAILBOX_FULL, HALTED, CLOSED,
   * INVALID_COMMAND). The command's `seq` is set, and its `ts` when it is 0.
   */
  trySubmit(cmd: Command): number | Refusal {
    return this.enqueue(cmd, undefined);
  }

  /** Enqueues a command and resolves with its events once it is durable; rejects with an EngineError if refused or halted. */
  submit(cmd: Command): Promise<CommandOutcome> {
    return new Promise((resolve, reject) => {
      const r = this.enqueue(cmd, { resolve, reject });
      if (typeof r !== 'number') reject(new EngineError(r.code, r.message));
    });
  }

  /** Resolves once every command up to `seq` has been applied. */
  waitForProcessed(seq: number): Promise<void> {
    if (this.processed >= seq) return Promise.resolve();
    if (this.haltError) return Promise.reject(this.haltError);
    if (this.closedDone) return Promise.reject(new EngineError('CLOSED', `actor ${this.symbol} is closed`));
    return new Promise((resolve, reject) => this.processedWaiters.push({ seq, resolve, reject }));
  }

  /** Resolves once every command up to `seq` is durable. */
  waitForDurable(seq: number): Promise<void> {
    if (this.durable >= seq) return Promise.resolve();
    if (this.haltError) return Promise.reject(this.haltError);
    if (this.closedDone) return Promise.reject(new EngineError('CLOSED', `actor ${this.symbol} is closed`));
    return new Promise((resolve, reject) => this.durableWaiters.push({ seq, resolve, reject }));
  }

  /** Calls `listener` with the new durable sequence number whenever it advances. */
  onDurable(listener: (seq: number) => void): () => void {
    this.durableListeners.push(listener);
    return () => {
      this.durableListeners = this.durableListeners.filter((l) => l !== listener);
    };
  }

  /**
   * Stops intake, processes what is queued, waits until it is durable, and closes the logs. A second
   * call waits for the first. Waits for sequence numbers never reached are then rejected (CLOSED).
   */
  close(): Promise<void> {
    this.closed ??= this.closeOnce().finally(() => {
      this.closedDone = true;
      this.rejectWaiters(new EngineError('CLOSED', `actor ${this.symbol} is closed`));
    });
    return this.closed;
  }

  private async closeOnce(): Promise<void> {
    this.closing = true;
    if (!this.haltError) {
      while (this.head < this.tail && !this.haltError) this.processBatch();
      try {
        await Promise.all([this.cmdLog.sync(), this.outbox.sync()]);
        this.checkDurable();
      } catch (err) {
        this.halt(err);
      }
    }
    if (this.haltError) {
      // Nothing more may reach the disk: what is buffered belongs to commands that were not acknowledged.
      this.cmdLog.abort();
      this.outbox.log.abort();
      return;
    }
    await Promise.allSettled([this.cmdLog.close(), this.outbox.close()]);
  }

  // ---------------------------------------------------------------------------------------------

  private enqueue(cmd: Command, waiter: Waiter | undefined): number | Refusal {
    if (this.haltRefusal) return this.haltRefusal;
    if (this.closing) return CLOSED;
    if (this.tail - this.head >= this.capacity) return FULL;
    // Every command taken and not yet durable (queued, or applied and waiting for its sync) is
    // bounded too: a stalled disk must not let them and their acknowledgements grow without end.
    if (this.lastSeq - this.durable >= this.maxPending) return BACKLOG;
    if (typeof cmd !== 'object' || cmd === null) return NOT_AN_OBJECT;
    if (cmd.symbol !== this.symbol) return refusal('UNKNOWN_SYMBOL', `command for ${JSON.stringify(cmd.symbol) ?? 'no symbol'} sent to the actor of ${this.symbol}`);
    // One command is logged at a time: one submitted from inside the logging of another (by a field
    // getter of the command, or by the clock) is refused, not logged in the middle of it.
    if (this.logging) return NESTED;
    this.logging = true;
    try {
      return this.logAndQueue(cmd, waiter);
    } finally {
      this.logging = false;
    }
  }

  /** Appends the command to the command log and queues the copy read back from it. */
  private logAndQueue(cmd: Command, waiter: Waiter | undefined): number | Refusal {
    const givenSeq = cmd.seq;
    const givenTs = cmd.ts;
    let now = 0;
    if (givenTs === 0) {
      try {
        now = this.clock();
      } catch (err) {
        return refusal('INVALID_CONFIG', `the engine's clock failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const seq = this.lastSeq + 1;
    try {
      cmd.seq = seq;
      if (givenTs === 0) cmd.ts = now < this.maxTs ? this.maxTs : now; // a clock that gives no number is still refused by the codec
    } catch (err) {
      // A frozen command, or one whose seq or ts cannot be written: refused, left as it was given.
      try {
        if (cmd.seq !== givenSeq) cmd.seq = givenSeq;
      } catch {
        // it could not be changed either
      }
      return refusal('INVALID_COMMAND', `the command's seq and ts must be writable (the actor sets them): ${(err as Error).message}`);
    }
    // The command is appended to the command log as it enters the mailbox (encoding it validates
    // it): it is in the log before it is applied, and the log is written out before the outbox.
    const log = this.cmdLog;
    let at: number;
    this.busy++;
    try {
      at = log.reserve(this.codec.maxLength);
    } catch (err) {
      cmd.seq = givenSeq;
      cmd.ts = givenTs;
      this.halt(err);
      return this.haltRefusal ?? CLOSED;
    } finally {
      this.busy--;
    }
    let len: number;
    // The command as logged, read back from the record just encoded: what the book applies and
    // the mailbox keeps. The caller's object is read once, by the encoder: one whose fields read
    // differently the second time (accessors, a proxy), or hold what the log writes otherwise
    // (-0 is logged as 0), cannot make the live book differ from what a replay of the log rebuilds.
    let logged: Command;
    try {
      len = this.codec.encode(cmd, log.buffer, at);
      logged = this.binary ? (this.binary.decodeInto(log.buffer, at, len, this.readBack) as unknown as Command) : (this.codec.decode(log.buffer.subarray(at, at + len)) as Command);
    } catch (err) {
      log.abandon();
      cmd.seq = givenSeq; // a refused command is left as it was given
      cmd.ts = givenTs;
      return refusal('INVALID_COMMAND', (err as Error).message);
    }
    if (logged.symbol !== this.symbol || logged.seq !== seq) {
      // A symbol (or seq) that read differently when it was encoded.
      log.abandon();
      cmd.seq = givenSeq;
      cmd.ts = givenTs;
      return refusal('INVALID_COMMAND', `the command's symbol or sequence number changed while it was being logged (${logged.symbol}, ${logged.seq})`);
    }
    log.commit(len);
    this.lastSeq = seq;
    if ((logged.type === 'limit' || logged.type === 'market') && logged.orderId > this.maxOrderId) this.maxOrderId = logged.orderId;
    if (logged.ts > this.maxTs) this.maxTs = logged.ts;
    const i = this.tail & this.mask;
    this.cmdEnds[i] = log.nextOffset;
    // The mailbox keeps its own copy, the command as logged: a caller that changes or submits its
    // object again before it is applied cannot make the live book differ from what a replay of
    // the log rebuilds.
    this.cmds.store(i, logged);
    this.waiting[i] = waiter;
    this.tail++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
    return seq;
  }

  private readonly run = (): void => {
    this.scheduled = false;
    if (this.haltError) return;
    this.processBatch();
    if (this.head < this.tail && !this.haltError && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  };

  private processBatch(): void {
    const end = Math.min(this.tail, this.head + this.batchMax);
    if (end === this.head) return;
    const cmdOffset = this.cmdEnds[(end - 1) & this.mask] as number;
    this.busy++;
    try {
      // The batch's commands are in the command log's buffer since they were enqueued: written out
      // before anything of the batch can reach the outbox's file (an outbox that fills its buffer
      // or rolls to a new segment writes in the middle of the batch), so that the outbox is never
      // written ahead of the command log.
      this.cmdLog.flush();
      while (this.head < end) {
        const i = this.head & this.mask;
        const cmd = this.cmds.load(i);
        const waiter = this.waiting[i];
        this.waiting[i] = undefined;
        this.head++;
        // Registered before anything can fail, so that a halt rejects it.
        const ack: PendingAck | undefined = waiter ? { seq: cmd.seq, waiter, events: NO_EVENTS } : undefined;
        if (ack) this.acks.push(ack);
        this.apply(cmd, waiter !== undefined);
        this.processed = cmd.seq;
        if (ack) ack.events = this.sink.collected ?? NO_EVENTS;
      }
      // The command log first: the outbox is never ahead of it.
      this.cmdLog.flush();
      this.outbox.flush();
    } catch (err) {
      this.halt(err);
      return;
    } finally {
      this.busy--;
    }
    this.marks.push({ seq: this.processed, cmdOffset, evOffset: this.outbox.log.writtenOffset });
    this.wakeProcessed();
    if (this.durability === 'batch') {
      Promise.all([this.cmdLog.sync(), this.outbox.sync()]).then(
        () => {
          this.checkDurable();
        },
        (err: unknown) => {
          this.halt(err);
        },
      );
    } else {
      this.checkDurable();
    }
  }

  /** Applies one command to the book (its events go to the sink). */
  private apply(cmd: Command, collect: boolean): void {
    const sink = this.sink;
    const book = this.book;
    sink.begin(cmd.seq, cmd.ts, cmd.userId, cmd.type === 'limit' || cmd.type === 'market' ? cmd : undefined, collect);
    switch (cmd.type) {
      case 'limit':
        book.submitLimit(cmd.orderId, cmd.userId, SIDE_CODE[cmd.side], cmd.price, cmd.qty, TIF_CODE[cmd.tif], STP_CODE[cmd.stp]);
        break;
      case 'market':
        book.submitMarket(cmd.orderId, cmd.userId, SIDE_CODE[cmd.side], cmd.qty, STP_CODE[cmd.stp]);
        break;
      case 'cancel': {
        const owner = book.ownerOf(cmd.orderId);
        if (owner >= 0 && owner !== cmd.userId) sink.engineReject('cancel', cmd.orderId, 'NOT_OWNER');
        else book.cancel(cmd.orderId);
        break;
      }
      case 'amend': {
        const owner = book.ownerOf(cmd.orderId);
        if (owner >= 0 && owner !== cmd.userId) sink.engineReject('amend', cmd.orderId, 'NOT_OWNER');
        else if (cmd.price === 0) book.reduce(cmd.orderId, cmd.qty);
        else if (cmd.qty === 0) {
          // A new price for what the order has left now (a gateway's view of it may be older: lots
          // filled since must not come back). An unknown order: any quantity, the book refuses it.
          book.amend(cmd.orderId, cmd.price, book.getOrder(cmd.orderId)?.qty ?? 1);
        } else book.amend(cmd.orderId, cmd.price, cmd.qty);
        break;
      }
    }
    sink.end();
  }

  private checkDurable(): void {
    const cmdDurable = this.cmdLog.durableOffset;
    const evDurable = this.outbox.durableOffset;
    let seq = this.durable;
    let evOffset = this.durableEv;
    let n = 0;
    const marks = this.marks;
    while (n < marks.length) {
      const m = marks[n] as BatchMark;
      if (m.cmdOffset > cmdDurable || m.evOffset > evDurable) break;
      seq = m.seq;
      evOffset = m.evOffset;
      n++;
    }
    if (n === 0) return;
    this.marks = n === marks.length ? [] : marks.slice(n);
    if (this.haltError) return;
    this.durableEv = evOffset;
    this.markDurable(seq);
  }

  private markDurable(seq: number): void {
    if (seq <= this.durable || this.haltError) return;
    this.durable = seq;
    let n = 0;
    const acks = this.acks;
    while (n < acks.length && (acks[n] as PendingAck).seq <= seq) {
      const a = acks[n] as PendingAck;
      a.waiter.resolve({ seq: a.seq, events: a.events });
      n++;
    }
    if (n > 0) this.acks = n === acks.length ? [] : acks.slice(n);
    if (this.durableWaiters.length > 0) {
      const still: typeof this.durableWaiters = [];
      for (const w of this.durableWaiters) {
        if (w.seq <= seq) w.resolve();
        else still.push(w);
      }
      this.durableWaiters = still;
    }
    this.notifyDurable();
  }

  /**
   * Tells the listeners of the durable seq. A listener may make it advance again (by closing the
   * engine, which drains the mailbox): the loop running then tells every listener of the new
   * value after the current one, so each hears strictly increasing values.
   */
  private notifyDurable(): void {
    if (this.notifying) return;
    this.notifying = true;
    try {
      while (this.notified < this.durable) {
        const seq = this.durable;
        this.notified = seq;
        // Each listener apart: one that throws must not keep the others (a publisher, a feed) from
        // hearing of it, nor fail the batch's promise chain (an unhandled rejection).
        for (const l of this.durableListeners) {
          try {
            l(seq);
          } catch (err) {
            this.listenerError(err);
          }
        }
      }
    } finally {
      this.notifying = false;
    }
  }

  private wakeProcessed(): void {
    if (this.processedWaiters.length === 0) return;
    const still: typeof this.processedWaiters = [];
    for (const w of this.processedWaiters) {
      if (w.seq <= this.processed) w.resolve();
      else still.push(w);
    }
    this.processedWaiters = still;
  }

  private halt(err: unknown): void {
    if (this.haltError) return;
    const e = new EngineError('HALTED', `actor ${this.symbol} halted after an I/O error: ${(err as Error).message}; restart the engine to recover`, {
      cause: err,
    });
    this.haltError = e;
    this.haltRefusal = refusal('HALTED', e.message);
    // What was applied before the failure was applied: a wait for it resolves, as it would if made now.
    this.wakeProcessed();
    for (const a of this.acks) a.waiter.reject(e);
    this.acks = [];
    while (this.head < this.tail) {
      const i = this.head & this.mask;
      this.waiting[i]?.reject(e);
      this.cmds.clear(i);
      this.waiting[i] = undefined;
      this.head++;
    }
    this.rejectWaiters(e);
    if (this.onHalt !== undefined) {
      try {
        this.onHalt(e, this.symbol);
      } catch (listenerErr) {
        this.listenerError(listenerErr);
      }
    }
  }

  private rejectWaiters(e: EngineError): void {
    for (const w of this.processedWaiters) w.reject(e);
    for (const w of this.durableWaiters) w.reject(e);
    this.processedWaiters = [];
    this.durableWaiters = [];
  }
}

function checkEventSeq(seq: number, expected: number, replayed: number): void {
  if (expected !== replayed) {
    throw new EngineError(
      'RECOVERY_FAILED',
      `the outbox holds events up to ${expected} after command ${seq}, but replaying the command log gives ${replayed}: the logs do not belong together`,
    );
  }
}

interface CmdEndAt {
  /** The offset after the CmdEnd record. */
  offset: number;
  seq: number;
  eventSeq: number;
}

/**
 * Calls `visit` with the type, seq and eventSeq of every record of the outbox from `from`. With
 * `verified`, the bytes were checked a moment ago (by opening the outbox) and CRCs are not checked again.
 */
function scanOutbox(
  io: FileIO,
  dir: string,
  codec: Codec,
  from: number,
  verified: boolean,
  visit: (type: string, seq: number, eventSeq: number, end: number) => boolean,
): void {
  const reader = new WalReader(dir, { io, from, verifyChecksums: !verified });
  const rec = new WalRecord();
  const scratch = new DecodedMessage();
  const binary = codec instanceof BinaryCodec ? codec : undefined;
  try {
    for (let r = reader.next(rec); r; r = reader.next(rec)) {
      const end = r.offset + 8 + r.length;
      if (binary) {
        const d = binary.decodeInto(r.buf, r.start, r.end - r.start, scratch);
        if (!visit(d.type, d.seq, d.eventSeq, end)) return;
      } else {
        const e = codec.decode(r.buf.subarray(r.start, r.end)) as Event;
        if (!visit(e.type, e.seq, e.eventSeq, end)) return;
      }
    }
  } finally {
    reader.close();
  }
}

/**
 * The outbox's last CmdEnd (zeros when there is none). Usually it is the last record (`tail`, as
 * found by opening the outbox); otherwise it is looked for from the last segment backwards.
 */
function lastCmdEnd(io: FileIO, dir: string, codec: Codec, tail: number): CmdEndAt {
  const out: CmdEndAt = { offset: 0, seq: 0, eventSeq: 0 };
  if (tail >= 0) {
    scanOutbox(io, dir, codec, tail, true, (type, seq, eventSeq, end) => {
      if (type === 'cmdEnd') {
        out.offset = end;
        out.seq = seq;
        out.eventSeq = eventSeq;
      }
      return false;
    });
    if (out.seq !== 0) return out;
  }
  const segments = listSegments(io, dir);
  for (let i = segments.length - 1; i >= 0 && out.seq === 0; i--) {
    // The last segment was verified by opening the outbox; earlier ones were not.
    scanOutbox(io, dir, codec, (segments[i] as SegmentRef).base, i === segments.length - 1, (type, seq, eventSeq, end) => {
      if (type === 'cmdEnd') {
        out.offset = end;
        out.seq = seq;
        out.eventSeq = eventSeq;
      }
      return true;
    });
  }
  return out;
}

/** The outbox's last CmdEnd of a command up to `lastSeq`. */
function lastCmdEndCovered(io: FileIO, dir: string, codec: Codec, lastSeq: number): CmdEndAt {
  const out: CmdEndAt = { offset: 0, seq: 0, eventSeq: 0 };
  scanOutbox(io, dir, codec, 0, false, (type, seq, eventSeq, end) => {
    if (type !== 'cmdEnd') return true;
    if (seq > lastSeq) return false;
    out.offset = end;
    out.seq = seq;
    out.eventSeq = eventSeq;
    return true;
  });
  return out;
}
