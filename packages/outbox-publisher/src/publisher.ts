// The publisher: tails an outbox from its committed cursor and publishes every event to a bus, at
// least once, in order, with up to `window` messages in flight.
//
// - It reads only what is durable: in the writer's process it reads up to the outbox's durable
//   offset and wakes on its notification; in another process it polls.
// - Acknowledgements may arrive in any order; the publisher advances only over the contiguous
//   prefix of acknowledged events. `CmdEnd` markers are never published: once everything before
//   one is acknowledged, the offset after it becomes the next cursor. The cursor is written at
//   most every `commitIntervalMs` (one atomic file write covers many commands).
// - On any failure (an error, a refusal, no acknowledgement within `ackTimeoutMs`) it drops what it
//   has in flight, rewinds to the committed cursor and publishes again from there after an
//   exponential backoff with jitter. A de-duplicating bus acknowledges the repeats as duplicates;
//   the bus's order check (bus.ts) guarantees that nothing after a failed message is stored before it.

import { BinaryCodec, codecByName, DecodedMessage, type Codec, type CodecName, type Event } from '@gx3/codecs';
import { listSegments, nodeFileIO, scanSegment, WalReader, WalRecord } from '@gx3/wal';
import { EventMessage, type Bus, type PublishAck } from './bus.js';
import { readCursor, writeCursorAsync, type CursorState } from './cursor.js';
import { OutboxError } from './errors.js';
import { readHistory } from './history.js';

/**
 * An outbox written in this process, as the publisher tails it: an `EventOutbox`, or a view of one
 * with a lower bound (an engine's actor passes `SymbolActor.publishable`, which ends at the events
 * of its last durable command: the outbox alone may be durable ahead of the command log).
 */
export interface OutboxSource {
  readonly codec: Codec;
  /** Records before this offset may be published. */
  readonly durableOffset: number;
  /** Calls `listener` whenever `durableOffset` advances; returns the unsubscribe function. */
  onDurable(listener: (offset: number) => void): () => void;
}

export interface PublisherOptions {
  /** The outbox's log directory. */
  readonly dir: string;
  readonly bus: Bus;
  /** Where the cursor file lives (default: `dir`). */
  readonly cursorDir?: string;
  /**
   * The outbox, when it is written in this process: the publisher then reads up to its durable
   * offset and wakes on its notification (an engine passes its actor's `publishable` view).
   */
  readonly outbox?: OutboxSource;
  /** The outbox's codec, when `outbox` is not given (default `binary`). */
  readonly codec?: Codec | CodecName;
  /** Messages in flight at most (default 1024). */
  readonly window?: number;
  /** Poll interval when tailing an outbox written by another process (default 20 ms). */
  readonly pollIntervalMs?: number;
  /** Cursor writes at most this often (default 50 ms). */
  readonly commitIntervalMs?: number;
  /** A message without acknowledgement after this long is a failure (default 5000 ms). */
  readonly ackTimeoutMs?: number;
  /** Retry backoff: first delay, cap and jitter fraction (defaults 20 ms, 5000 ms, 0.5). */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number; readonly jitter?: number };
  readonly maxRecordSize?: number;
  /** Called on every failure (the publisher retries by itself). */
  readonly onError?: (err: Error) => void;
}

export interface PublisherStats {
  /** Messages handed to the bus (repeats included). */
  published: number;
  /** Acknowledgements received (duplicates included). */
  acknowledged: number;
  /** Acknowledgements that said the bus already held the message. */
  duplicates: number;
  /** Failures (each one rewinds). */
  failures: number;
  /** Failures since the last acknowledgement (0 while publishing goes well). */
  consecutiveFailures: number;
  /** Messages in flight now. */
  inFlight: number;
  /** The cursor on disk: everything before it is acknowledged. */
  committedOffset: number;
  /** Everything before it is acknowledged (may be ahead of the cursor on disk). */
  acknowledgedOffset: number;
  /** Where reading goes on. */
  readOffset: number;
  /** The end of what can be published (the outbox's durable offset; with polling, what was read). */
  outboxEnd: number;
  /** Bytes of outbox not yet acknowledged. */
  lagBytes: number;
  /** Event sequence number of the last event acknowledged. */
  lastEventSeq: number;
  lastError: Error | undefined;
  running: boolean;
}

interface Entry {
  /** Offset after the record. */
  next: number;
  /** 0 for a CmdEnd marker. */
  eventSeq: number;
  acked: boolean;
  sentAt: number;
}

export class Publisher {
  private readonly bus: Bus;
  private readonly dir: string;
  private readonly cursorDir: string;
  private readonly outbox: OutboxSource | undefined;
  private readonly codec: Codec;
  private readonly binary: BinaryCodec | undefined;
  private readonly scratch = new DecodedMessage();
  private readonly window: number;
  private readonly pollIntervalMs: number;
  private readonly commitIntervalMs: number;
  private readonly ackTimeoutMs: number;
  private readonly backoffInitial: number;
  private readonly backoffMax: number;
  private readonly jitter: number;
  private readonly maxRecordSize: number;
  private readonly onError: ((err: Error) => void) | undefined;

  private reader: WalReader | undefined;
  private readonly rec = new WalRecord();
  private committed: CursorState = { offset: 0, lastEventSeq: 0, commits: 0 };
  /** Acknowledged prefix: the next cursor candidate. */
  private ackedOffset = 0;
  private ackedEventSeq = 0;
  /** The last acknowledged event of the prefix (may be past the last CmdEnd in it). */
  private prefixEventSeq = 0;
  private pending: Entry[] = [];
  private head = 0;
  private inFlight = 0;
  private generation = 0;
  private attempt = 0;
  private running = false;
  private stopping = false;
  private pumpScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  /** Set when a polled outbox was made again while running; cleared by start(). */
  private remadeError: OutboxError | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private committing: Promise<void> | undefined;
  private unlisten: (() => void) | undefined;
  private waiters: { offset: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  private readonly counters = { published: 0, acknowledged: 0, duplicates: 0, failures: 0 };
  private lastError: Error | undefined;
  /** The stop() under way, if any. */
  private stopped: Promise<void> | undefined;
  /** start() was called while stop() was under way. */
  private restartPending = false;
  /**
   * The read offset when publishing last failed: `attempt` (the backoff, `consecutiveFailures`)
   * is reset only by an acknowledgement past it, not by repeats of the events before the failure.
   */
  private failedAt = 0;
  /** The outbox's history id (read at start; undefined for an outbox made before history ids). */
  private history: string | undefined;

  constructor(options: PublisherOptions) {
    this.bus = options.bus;
    this.dir = options.dir;
    this.cursorDir = options.cursorDir ?? options.dir;
    this.outbox = options.outbox;
    const codec = options.outbox?.codec ?? options.codec ?? 'binary';
    this.codec = typeof codec === 'object' ? codec : codecByName(codec);
    this.binary = this.codec instanceof BinaryCodec ? this.codec : undefined;
    this.window = positive('window', options.window ?? 1024);
    this.pollIntervalMs = positive('pollIntervalMs', options.pollIntervalMs ?? 20);
    this.commitIntervalMs = nonNegative('commitIntervalMs', options.commitIntervalMs ?? 50);
    this.ackTimeoutMs = positive('ackTimeoutMs', options.ackTimeoutMs ?? 5000);
    this.backoffInitial = positive('backoff.initialMs', options.backoff?.initialMs ?? 20);
    this.backoffMax = positive('backoff.maxMs', options.backoff?.maxMs ?? 5000);
    this.jitter = options.backoff?.jitter ?? 0.5;
    if (!(this.jitter >= 0 && this.jitter <= 1)) throw new OutboxError('INVALID_OPTIONS', `backoff.jitter must be in 0..1, got ${this.jitter}`);
    this.maxRecordSize = options.maxRecordSize ?? 1 << 20;
    this.onError = options.onError;
  }

  /** Reads the cursor (CURSOR_CORRUPT if it cannot be trusted) and starts publishing. */
  start(): void {
    // Checked first: a stop() under way still counts as running while it waits for acknowledgements.
    if (this.stopped !== undefined) {
      // stop() is still under way: start again once it is done (a stop() before then cancels this).
      this.restartPending = true;
      return;
    }
    if (this.running) return;
    const cursor = readCursor(this.cursorDir);
    this.history = readHistory(this.dir);
    this.committed = this.cursorFor(cursor);
    // The end of the outbox: the engine's durable offset, or, polling another process's outbox,
    // the end of the records in its files.
    const end = this.committed.offset === 0 ? 0 : this.outbox !== undefined ? this.outbox.durableOffset : this.dataEnd();
    if (this.committed.offset > end) {
      throw new OutboxError(
        'CURSOR_AHEAD',
        `the cursor in ${this.cursorDir} (offset ${this.committed.offset}) is past the end of the outbox in ${this.dir} (${end}): the outbox lost events that were published, or it is not the outbox the cursor was written for. Recovery: delete the cursor to publish the outbox from its start, or write a known-good offset with writeCursor()`,
      );
    }
    this.ackedOffset = this.committed.offset;
    this.ackedEventSeq = this.committed.lastEventSeq;
    this.remadeError = undefined;
    this.running = true;
    this.stopping = false;
    this.openReader();
    if (this.outbox) this.unlisten = this.outbox.onDurable(() => { this.schedulePump(); });
    this.sweepTimer = setInterval(() => { this.sweep(); }, Math.max(10, this.ackTimeoutMs / 4));
    this.sweepTimer.unref();
    this.schedulePump();
  }

  /**
   * Stops reading, waits (up to the acknowledgement timeout) for what is in flight, commits the
   * cursor and releases the outbox's files. The bus is not closed: it may be shared.
   */
  stop(): Promise<void> {
    if (this.stopped !== undefined) {
      this.restartPending = false;
      return this.stopped;
    }
    if (!this.running) return Promise.resolve();
    this.stopped = this.stopOnce().finally(() => {
      this.stopped = undefined;
      if (this.restartPending) {
        this.restartPending = false;
        try {
          this.start();
        } catch (err) {
          this.report(err as Error);
        }
      }
    });
    return this.stopped;
  }

  private async stopOnce(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.pollTimer);
    this.retryTimer = undefined;
    this.pollTimer = undefined;
    const deadline = Date.now() + this.ackTimeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2));
    }
    clearInterval(this.sweepTimer);
    clearTimeout(this.commitTimer);
    this.sweepTimer = undefined;
    this.commitTimer = undefined;
    this.unlisten?.();
    this.running = false;
    this.generation++; // late acknowledgements are ignored from here on
    await this.committing;
    await this.commit();
    this.reader?.close();
    this.reader = undefined;
    // Messages never answered are forgotten (a late answer is ignored): stats() shows none in flight.
    this.inFlight = 0;
    this.pending = [];
    this.head = 0;
    // Nothing more is acknowledged until a start(): a wait for an offset not reached ends here.
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) {
      if (this.ackedOffset >= w.offset) w.resolve();
      else w.reject(new OutboxError('STOPPED', `the publisher of ${this.dir} stopped before offset ${w.offset} was acknowledged (acknowledged up to ${this.ackedOffset})`));
    }
  }

  /**
   * The cursor to resume from: the one read, unless it was written for another history of the
   * outbox (a wiped and remade outbox whose cursor was kept elsewhere), whose offsets mean nothing
   * here: then the start of the outbox.
   */
  private cursorFor(cursor: CursorState): CursorState {
    if (cursor.history === undefined || this.history === undefined || cursor.history === this.history) return cursor;
    return { offset: 0, lastEventSeq: 0, commits: cursor.commits, history: this.history };
  }

  stats(): PublisherStats {
    const end = this.outbox ? this.outbox.durableOffset : (this.reader?.offset ?? this.ackedOffset);
    return {
      ...this.counters,
      inFlight: this.inFlight,
      consecutiveFailures: this.attempt,
      committedOffset: this.committed.offset,
      acknowledgedOffset: this.ackedOffset,
      readOffset: this.reader?.offset ?? this.ackedOffset,
      outboxEnd: end,
      lagBytes: Math.max(0, end - this.ackedOffset),
      lastEventSeq: this.prefixEventSeq,
      lastError: this.lastError,
      running: this.running,
    };
  }

  /**
   * Resolves once everything before `offset` is acknowledged (and at least part of a commit is under
   * way); rejects with STOPPED if the publisher stops first.
   */
  acknowledged(offset: number): Promise<void> {
    if (this.ackedOffset >= offset) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ offset, resolve, reject }));
  }

  // ---------------------------------------------------------------------------------------------

  private openReader(): void {
    this.reader?.close();
    const outbox = this.outbox;
    this.reader = new WalReader(this.dir, {
      from: this.committed.offset,
      maxRecordSize: this.maxRecordSize,
      ...(outbox ? { end: () => outbox.durableOffset } : {}),
    });
    this.pending = [];
    this.head = 0;
    this.inFlight = 0;
    this.ackedOffset = this.committed.offset;
    this.ackedEventSeq = this.committed.lastEventSeq;
    this.prefixEventSeq = this.committed.lastEventSeq;
  }

  private schedulePump(): void {
    if (this.pumpScheduled || !this.running || this.stopping) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.running || this.stopping || this.retryTimer !== undefined) return;
    const reader = this.reader;
    if (!reader) return;
    // The outbox was made again under this publisher: nothing more is read (the new files at the
    // old offsets would be published under the old history) until a restart.
    if (this.remadeError !== undefined) {
      this.fail(this.remadeError);
      return;
    }
    const gen = this.generation;
    if (this.history === undefined) {
      // An outbox opened after this publisher started (another process's): its history id appears then.
      try {
        this.history = readHistory(this.dir);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      if (this.history !== undefined && this.inFlight === 0 && this.head === this.pending.length) {
        const cursor = this.cursorFor(this.committed);
        if (cursor !== this.committed) {
          this.committed = cursor;
          this.openReader();
          this.pump();
          return;
        }
      }
    }
    let read = 0;
    while (this.inFlight < this.window) {
      let rec: WalRecord | null;
      let msg: EventMessage | undefined;
      try {
        rec = reader.next(this.rec);
        if (rec === null) break;
        read++;
        msg = this.message(rec);
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      const next = rec.offset + 8 + rec.length;
      if (msg === undefined) {
        if (this.head === this.pending.length) {
          // Everything before this CmdEnd is acknowledged: it is the cursor candidate at once.
          this.ackedOffset = next;
          this.ackedEventSeq = this.prefixEventSeq;
          this.movedForward();
        } else {
          this.pending.push({ next, eventSeq: 0, acked: true, sentAt: 0 });
          this.advance();
        }
        continue;
      }
      if (this.bus.publishNow !== undefined) {
        // A bus that stores before returning: acknowledged (or failed) here, nothing to track.
        let ack: PublishAck | undefined;
        this.counters.published++;
        try {
          ack = this.bus.publishNow(msg);
        } catch (err) {
          this.fail(err instanceof Error ? err : new Error(String(err)));
          return;
        } finally {
          msg.release();
        }
        this.counters.acknowledged++;
        // A bus that answers nothing stored it (as the callback path takes a missing answer).
        if (ack?.duplicate) this.counters.duplicates++;
        if (next >= this.failedAt) this.attempt = 0;
        this.prefixEventSeq = msg.eventSeq;
        continue;
      }
      const entry: Entry = { next, eventSeq: msg.eventSeq, acked: false, sentAt: Date.now() };
      this.pending.push(entry);
      this.inFlight++;
      this.counters.published++;
      try {
        this.bus.publish(msg, (err, ack) => {
          if (gen !== this.generation) return; // from before a rewind
          if (entry.acked) return; // a bus that answers twice: the first answer counted
          if (err) {
            this.fail(err);
            return;
          }
          entry.acked = true;
          this.inFlight--;
          this.counters.acknowledged++;
          if (ack?.duplicate === true) this.counters.duplicates++;
          if (entry.next >= this.failedAt) this.attempt = 0;
          this.advance();
          this.schedulePump();
        });
      } catch (err) {
        // A bus that throws instead of calling back: the same as a failed publish (rewind, retry).
        if (gen === this.generation) this.fail(err instanceof Error ? err : new Error(String(err)));
        return;
      } finally {
        msg.release();
      }
      if (gen !== this.generation) return; // the bus failed synchronously
    }
    if (this.inFlight < this.window && !this.outbox && this.running && !this.stopping) {
      // Polling another process's outbox, and nothing new: was it made again (a wiped data
      // directory)? The reader would tail the deleted files in silence; it is reported instead.
      if (read === 0 && this.history !== undefined && this.remade()) return;
      clearTimeout(this.pollTimer);
      this.pollTimer = setTimeout(() => {
        this.pump();
      }, this.pollIntervalMs);
      this.pollTimer.unref();
    }
  }

  /** Where the records of the outbox's files end (0 if it has none). */
  private dataEnd(): number {
    const io = nodeFileIO;
    try {
      const segments = io.exists(this.dir) ? listSegments(io, this.dir) : [];
      const last = segments[segments.length - 1];
      if (last === undefined) return 0;
      const fd = io.open(last.file, 'r');
      try {
        return last.base + scanSegment(io, fd, this.maxRecordSize).end;
      } finally {
        io.close(fd);
      }
    } catch (err) {
      throw new OutboxError('CURSOR_IO', `cannot find the end of the outbox in ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Fails (HISTORY_MISMATCH) if the outbox's history id is no longer the one this publisher read. */
  private remade(): boolean {
    let now: string | undefined;
    try {
      now = readHistory(this.dir);
    } catch (err) {
      this.fail(err as Error);
      return true;
    }
    if (now === undefined || now === this.history) return false;
    this.remadeError = new OutboxError(
      'HISTORY_MISMATCH',
      `the outbox in ${this.dir} was made again while this publisher ran (history ${now}, was ${this.history ?? 'none'}): restart the publisher to publish the new outbox`,
    );
    this.fail(this.remadeError);
    return true;
  }

  /**
   * The message of a record, or undefined for a CmdEnd marker. With the binary codec the record is
   * decoded in place (its symbol and sequence number read without allocating); the event object is
   * made only if the bus asks for it.
   */
  private message(rec: WalRecord): EventMessage | undefined {
    let m: EventMessage;
    if (this.binary) {
      const d = this.binary.decodeInto(rec.buf, rec.start, rec.end - rec.start, this.scratch);
      if (d.type === 'cmdEnd') return undefined;
      if (!PUBLISHED_TYPES.has(d.type) || !(d.eventSeq >= 1)) throw notAnEvent(rec, d.type);
      m = new EventMessage(d.symbol, d.eventSeq, rec.buf, rec.start, rec.end, this.codec);
    } else {
      const e = this.codec.decode(rec.buf.subarray(rec.start, rec.end)) as Event;
      if (e.type === 'cmdEnd') return undefined;
      if (!PUBLISHED_TYPES.has(e.type) || !(e.eventSeq >= 1)) throw notAnEvent(rec, e.type);
      m = new EventMessage(e.symbol, e.eventSeq, rec.buf, rec.start, rec.end, this.codec, e);
    }
    m.history = this.history;
    return m;
  }

  /** Moves the acknowledged prefix forward; a CmdEnd in it becomes the cursor candidate. */
  private advance(): void {
    const p = this.pending;
    let moved = false;
    while (this.head < p.length) {
      const e = p[this.head] as Entry;
      if (!e.acked) break;
      this.head++;
      if (e.eventSeq > 0) {
        this.prefixEventSeq = e.eventSeq;
      } else {
        this.ackedOffset = e.next;
        this.ackedEventSeq = this.prefixEventSeq;
        moved = true;
      }
    }
    if (this.head > 4096 && this.head * 2 > p.length) {
      this.pending = p.slice(this.head);
      this.head = 0;
    }
    if (moved) this.movedForward();
  }

  /** The acknowledged offset moved: wakes its waiters and schedules a cursor commit. */
  private movedForward(): void {
    // Everything read before the last failure is acknowledged: publishing works again.
    if (this.ackedOffset >= this.failedAt) this.attempt = 0;
    if (this.waiters.length > 0) {
      const still: typeof this.waiters = [];
      for (const w of this.waiters) {
        if (w.offset <= this.ackedOffset) w.resolve();
        else still.push(w);
      }
      this.waiters = still;
    }
    if (this.commitTimer === undefined && this.committing === undefined) {
      this.commitTimer = setTimeout(() => {
        this.commitTimer = undefined;
        this.committing = this.commit().finally(() => {
          this.committing = undefined;
        });
      }, this.commitIntervalMs);
      this.commitTimer.unref();
    }
  }

  private async commit(): Promise<void> {
    if (this.ackedOffset <= this.committed.offset) return;
    const state: CursorState = { offset: this.ackedOffset, lastEventSeq: this.ackedEventSeq, commits: this.committed.commits + 1, history: this.history };
    try {
      await writeCursorAsync(this.cursorDir, state);
      this.committed = state;
    } catch (err) {
      this.report(err as Error);
    }
    // Commits that became possible while this one was being written.
    if (this.running && !this.stopping && this.ackedOffset > this.committed.offset && this.commitTimer === undefined) {
      this.commitTimer = setTimeout(() => {
        this.commitTimer = undefined;
        this.committing = this.commit().finally(() => {
          this.committing = undefined;
        });
      }, this.commitIntervalMs);
      this.commitTimer.unref();
    }
  }

  /** Drops everything in flight, rewinds to the acknowledged prefix and retries after a backoff. */
  private fail(err: Error): void {
    this.generation++;
    this.counters.failures++;
    this.report(err);
    if (!this.running || this.stopping) {
      this.inFlight = 0;
      return;
    }
    this.failedAt = Math.max(this.failedAt, this.reader?.offset ?? 0);
    // Everything before the acknowledged prefix is safe; restart from the last cursor candidate.
    // Unless the bus says it holds less than that (a stream wiped or replaced, another bus than the
    // cursor was written for): then from the outbox's start, the bus dropping what it holds.
    const busBehind = err instanceof OutboxError && err.code === 'OUT_OF_ORDER' && err.busLastEventSeq !== undefined && err.busLastEventSeq < this.ackedEventSeq;
    const resumeAt = busBehind ? 0 : this.ackedOffset;
    const resumeSeq = busBehind ? 0 : this.ackedEventSeq;
    const delay = Math.min(this.backoffMax, this.backoffInitial * 2 ** Math.min(this.attempt, 30)) * (1 - this.jitter * Math.random());
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.inFlight = 0;
    this.pending = [];
    this.head = 0;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.running || this.stopping) return;
      // Polling another process's outbox: made again meanwhile, its new files must not be read from
      // the old offset (and published under the old history).
      if (!this.outbox && this.history !== undefined && this.remadeError === undefined && this.remade()) return;
      try {
        this.reader?.close();
        this.reader = new WalReader(this.dir, {
          from: resumeAt,
          maxRecordSize: this.maxRecordSize,
          ...(this.outbox ? { end: () => (this.outbox as OutboxSource).durableOffset } : {}),
        });
        this.ackedOffset = resumeAt;
        this.ackedEventSeq = resumeSeq;
        this.prefixEventSeq = resumeSeq;
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      this.pump();
    }, delay);
    this.retryTimer.unref();
  }

  /** Fails the oldest message in flight if it waited longer than the acknowledgement timeout. */
  private sweep(): void {
    if (this.inFlight === 0 || this.retryTimer !== undefined) return;
    const oldest = this.pending.find((e, i) => i >= this.head && !e.acked);
    if (oldest && Date.now() - oldest.sentAt > this.ackTimeoutMs) {
      this.fail(new OutboxError('PUBLISH_TIMEOUT', `no acknowledgement for event ${oldest.eventSeq} within ${this.ackTimeoutMs} ms`));
    }
  }

  private report(err: Error): void {
    this.lastError = err;
    try {
      this.onError?.(err);
    } catch {
      // a throwing error handler must not stop the publisher
    }
  }
}

/** The records of an outbox that are published (a CmdEnd only marks where a command's events end). */
const PUBLISHED_TYPES: ReadonlySet<string> = new Set<Event['type']>(['accepted', 'rejected', 'added', 'trade', 'canceled', 'amended']);

/** A record that is not an event (a command written to the outbox, an event without a sequence number). */
function notAnEvent(rec: WalRecord, type: string): OutboxError {
  return new OutboxError('NOT_AN_EVENT', `the outbox record at offset ${rec.offset} is not an event (a ${type}, or no event sequence number): it is not published, and publishing stops there`);
}

function positive(name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new OutboxError('INVALID_OPTIONS', `${name} must be a positive number, got ${v}`);
  return v;
}

function nonNegative(name: string, v: number): number {
  if (!(Number.isFinite(v) && v >= 0)) throw new OutboxError('INVALID_OPTIONS', `${name} must be a non-negative number, got ${v}`);
  return v;
}
