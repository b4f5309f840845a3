// The NATS JetStream bus. Each symbol has its own stream (`<streamPrefix>_<SYMBOL>`, subject
// `<subjectPrefix>.<symbol>`), created on first use or checked if it exists. A message is published
// with `Nats-Msg-Id: <symbol>:<eventSeq>` (JetStream drops a repeat within the duplicate window) and
// `Nats-Expected-Last-Msg-Id: <symbol>:<eventSeq - 1>` (JetStream refuses a message whose
// predecessor is not the stream's last one: the bus contract's order check; error 10070), and
// `Gx3-History: <id>`, its outbox's history (history.ts). Event ids repeat across histories (an
// engine whose data directory was wiped numbers from 1 again), so a message that JetStream takes
// for a duplicate, or whose refusal by the order check would make it one, is a duplicate only if
// the stored event is of the same history; otherwise it fails with HISTORY_MISMATCH, and nothing
// of the new history is stored or dropped.
//
// Publishes are pipelined: each goes out on the core connection with a reply subject under one
// inbox subscription, and the acknowledgements are matched as they arrive, so throughput is bounded
// by the publisher's window, not by a round trip per message. A message without an acknowledgement
// after `ackTimeoutMs` fails with PUBLISH_TIMEOUT (the publisher rewinds and republishes; the
// duplicate check makes that safe). The connection reconnects by itself.

import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, createInbox, headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { AckCallback, Bus, BusMessage, PublishAck } from './bus.js';
import { crc32 } from '@gx3/wal';
import { OutboxError } from './errors.js';

export interface NatsBusOptions {
  /** NATS server URL(s) (default `NATS_URL` or nats://127.0.0.1:4222). */
  readonly servers?: string | string[];
  /** Stream name prefix (default `GX3`). */
  readonly streamPrefix?: string;
  /** Subject prefix (default `gx3.events`). */
  readonly subjectPrefix?: string;
  /** JetStream's duplicate window for the streams it creates (default 2 minutes). */
  readonly duplicateWindowMs?: number;
  readonly ackTimeoutMs?: number;
  /** Stream storage for the streams it creates (default `file`). */
  readonly storage?: 'file' | 'memory';
  /** Time to wait for the first connection (default 5000 ms). */
  readonly connectTimeoutMs?: number;
}

interface Pending {
  done: AckCallback;
  deadline: number;
  symbol: string;
  eventSeq: number;
  history: string | undefined;
  /**
   * The message's length and CRC-32, to compare with a stored duplicate's bytes (numbers rather
   * than a copy of the bytes: retaining a copy per message in flight made the JetStream benchmark
   * about 17% slower, 81 k against 97 k events/s).
   */
  length: number;
  crc: number;
}

/** The header that carries an event's outbox history id (history.ts). */
export const HISTORY_HEADER = 'Gx3-History';

const ERR_WRONG_LAST_MSG_ID = 10070;
const ERR_WRONG_LAST_SEQUENCE = 10071;

/**
 * The stream of a symbol. Stream names may not contain `.`, `*`, `>` or spaces, so `_` is written
 * `__` and any other such character `_x<hex code>_`: distinct symbols (`BTC.USDT`, `BTC_USDT`) get
 * distinct streams.
 */
export function streamName(prefix: string, symbol: string): string {
  return `${prefix}_${symbol.replace(/[^A-Za-z0-9-]/g, (c) => (c === '_' ? '__' : `_x${(c.codePointAt(0) ?? 0).toString(16)}_`))}`;
}

// No `_` in a stream prefix: the symbol's part of a stream name writes `_` as `__` and other
// characters as `_x<hex>_`, and a prefix holding `_` could make two (prefix, symbol) pairs one
// name (`PROD` + `EU_BTC` and `PROD_EU_` + `BTC` both `PROD_EU__BTC`).
const STREAM_PREFIX = /^[A-Za-z0-9-]{1,32}$/;
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/**
 * Why `prefix` cannot begin the bus's stream names (undefined if it can): 1-32 of `A-Z a-z 0-9 -`
 * (a stream name may not hold `.`, `*`, `>`, spaces or path separators, and `_` separates the
 * prefix from the symbol).
 */
export function streamPrefixProblem(prefix: unknown): string | undefined {
  if (typeof prefix === 'string' && STREAM_PREFIX.test(prefix)) return undefined;
  return `a stream prefix must be 1-32 characters of A-Z a-z 0-9 - (no _: it separates the prefix from the symbol), got ${show(prefix)}`;
}

/**
 * Why `prefix` cannot begin the bus's subjects (undefined if it can): tokens of `A-Z a-z 0-9 _ -`
 * separated by single dots, at most 128 characters (no wildcard, no empty token).
 */
export function subjectPrefixProblem(prefix: unknown): string | undefined {
  if (typeof prefix === 'string' && prefix.length <= 128 && SUBJECT_PREFIX.test(prefix)) return undefined;
  return `a subject prefix must be tokens of A-Z a-z 0-9 _ - separated by single dots (at most 128 characters, no wildcards), got ${show(prefix)}`;
}

/**
 * A server URL for messages and logs, without the user and password (or token) written in it:
 * `nats://***@host:4222` (everything between the scheme and the last `@`).
 */
export function withoutCredentials(server: string): string {
  const s = server.trim();
  // A server URL has no `@` but the one after its user info: everything up to the last `@` goes
  // (the parser may read a password holding `/`, `?` or `#`, or a third slash, as a path).
  const at = s.lastIndexOf('@');
  if (at < 0) return s;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s)?.[0] ?? '';
  return `${scheme}***${s.slice(at)}`;
}

/** A value for an error message: never throws (BigInts, cycles), and short. */
function show(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'bigint') return `${String(v)}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 140 ? `${v.slice(0, 140)}...` : v);
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}

/**
 * Why `value` cannot be the duration option `name` (undefined if it can, or is not given): a whole
 * number of milliseconds from 1 to 2^31 - 1 (a timer's range; JetStream takes the duplicate window
 * in nanoseconds).
 */
function durationProblem(name: string, value: unknown): string | undefined {
  if (value === undefined || (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 0x7fffffff)) return undefined;
  return `${name} must be a whole number of milliseconds from 1 to 2147483647, got ${show(value)}`;
}

/**
 * Why `symbol` cannot end a subject (undefined if it can): NATS subjects are tokens separated by
 * single dots, so a symbol may not begin or end with `.` nor hold `..`, nor hold a wildcard or space.
 */
export function subjectSymbolProblem(symbol: string): string | undefined {
  if (SUBJECT_SYMBOL.test(symbol)) return undefined;
  return `symbol ${show(symbol)} cannot end a NATS subject (tokens separated by single dots: no leading, trailing or doubled dot, no wildcard or space)`;
}
const SUBJECT_SYMBOL = /^[^.*>\s]+(\.[^.*>\s]+)*$/;

/** The event sequence number in a message id (`<symbol>:<eventSeq>`), or -1. */
function eventSeqOf(id: string | undefined): number {
  const m = id === undefined ? null : /:(\d+)$/.exec(id);
  return m === null ? -1 : Number(m[1]);
}

export class NatsJetStreamBus implements Bus {
  readonly name = 'nats-jetstream';
  private readonly pending = new Map<string, Pending>();
  /** Per symbol and history: the stream's creation or check under way. */
  private readonly streams = new Map<string, Promise<void>>();
  /** Symbols whose stream is known to exist and to hold no other history: symbol → the history checked ('' for none). */
  private readonly ready = new Map<string, string>();
  /**
   * Symbols whose subject's last message is the next message's previous event although JetStream
   * refused it by the last message id (after a server restart, JetStream knows the last message
   * ids only of the messages in its duplicate window): symbol → the previous event's id and its
   * stream sequence. That message is then checked by the subject's sequence instead, once.
   */
  private readonly resync = new Map<string, { previousId: string; seq: number }>();
  /** Per symbol, the last event the stream is known to hold (its last at the check, or acknowledged since). */
  private readonly known = new Map<string, number>();
  /**
   * Per symbol, while messages that the stream may hold already are in flight (a republication: a
   * restart from an older cursor, a rewind): such a message may be a duplicate whose stored copy
   * differs (EVENT_MISMATCH: the outbox lost published events) or is of another history, and the
   * order check of the message after it compares ids only, so it would pass against the stream's
   * copy. The messages after them are therefore not pipelined behind them: they wait for them to
   * settle, and fail if one of them failed.
   */
  private readonly gates = new Map<string, Gate>();
  private readonly inbox: string;
  private readonly sub: Subscription;
  private readonly sweeper: NodeJS.Timeout;
  private nextToken = 0;
  private closed = false;

  private constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    private readonly options: Required<Omit<NatsBusOptions, 'servers' | 'connectTimeoutMs'>>,
  ) {
    this.inbox = createInbox();
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => { this.onAck(err, msg); } });
    this.sweeper = setInterval(() => { this.sweep(); }, Math.max(10, Math.min(250, options.ackTimeoutMs / 4)));
    this.sweeper.unref();
  }

  /** Connects (BUS_ERROR if no server answers in time; INVALID_OPTIONS for a prefix no stream or subject can have). */
  static async connect(options: NatsBusOptions = {}): Promise<NatsJetStreamBus> {
    const streamPrefix = options.streamPrefix ?? 'GX3';
    const subjectPrefix = options.subjectPrefix ?? 'gx3.events';
    const problem =
      streamPrefixProblem(streamPrefix) ??
      subjectPrefixProblem(subjectPrefix) ??
      durationProblem('ackTimeoutMs', options.ackTimeoutMs) ??
      durationProblem('duplicateWindowMs', options.duplicateWindowMs) ??
      durationProblem('connectTimeoutMs', options.connectTimeoutMs);
    if (problem !== undefined) throw new OutboxError('INVALID_OPTIONS', `NatsJetStreamBus: ${problem}`);
    if (options.storage !== undefined && options.storage !== 'file' && options.storage !== 'memory') {
      throw new OutboxError('INVALID_OPTIONS', `NatsJetStreamBus: storage must be file or memory, got ${show(options.storage)}`);
    }
    const servers = options.servers ?? process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers,
        timeout: options.connectTimeoutMs ?? 5000,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        name: 'gx3-publisher',
      });
    } catch (err) {
      const where = (Array.isArray(servers) ? servers : [servers]).map(withoutCredentials).join(', ');
      throw new OutboxError('BUS_ERROR', `cannot connect to NATS at ${where}: ${(err as Error).message}`, { cause: err });
    }
    const jsm = await jetstreamManager(nc);
    return new NatsJetStreamBus(nc, jsm, {
      streamPrefix,
      subjectPrefix,
      duplicateWindowMs: options.duplicateWindowMs ?? 120_000,
      ackTimeoutMs: options.ackTimeoutMs ?? 5000,
      storage: options.storage ?? 'file',
    });
  }

  /** The subject of a symbol's events. */
  subject(symbol: string): string {
    return `${this.options.subjectPrefix}.${symbol}`;
  }

  /** The stream of a symbol. */
  stream(symbol: string): string {
    return streamName(this.options.streamPrefix, symbol);
  }

  /**
   * Creates the symbol's stream, or checks that the existing one covers its subject and that its
   * last event is of `history` (HISTORY_MISMATCH otherwise). Every message of a symbol waits for
   * this before it is sent: with many messages in flight, a later one's order check could pass
   * against another history's event of the same id before an earlier one's refusal is settled.
   */
  ensureStream(symbol: string, history?: string): Promise<void> {
    const bad = subjectSymbolProblem(symbol);
    if (bad !== undefined) return Promise.reject(new OutboxError('INVALID_OPTIONS', `NatsJetStreamBus: ${bad}`));
    const key = `${symbol}\u0000${history ?? ''}`;
    let p = this.streams.get(key);
    if (!p) {
      p = this.createOrCheck(symbol)
        .then(() => this.checkHistory(symbol, history))
        .then(() => {
          this.ready.set(symbol, history ?? '');
        });
      this.streams.set(key, p);
      p.catch(() => this.streams.delete(key)); // try again on the next publish
    }
    return p;
  }

  /** Forgets what is known of the symbol's stream (it is checked, or made, again before the next publish). */
  private forgetStream(symbol: string): void {
    this.ready.delete(symbol);
    for (const key of this.streams.keys()) if (key.startsWith(`${symbol}\u0000`)) this.streams.delete(key);
  }

  /** HISTORY_MISMATCH if the subject's last event is of a history other than `history`. */
  private async checkHistory(symbol: string, history: string | undefined): Promise<void> {
    let last;
    try {
      last = await this.jsm.streams.getMessage(this.stream(symbol), { last_by_subj: this.subject(symbol) });
    } catch (err) {
      if (/no message found/i.test((err as Error).message)) return;
      throw new OutboxError('BUS_ERROR', `cannot read the last event of ${this.subject(symbol)}: ${(err as Error).message}`, { cause: err });
    }
    const mismatch = historyMismatch(this.stream(symbol), symbol, history, last?.header.get(HISTORY_HEADER), last?.header.get('Nats-Msg-Id'));
    if (mismatch) throw mismatch;
    this.noteStored(symbol, eventSeqOf(last?.header.get('Nats-Msg-Id')));
  }

  /** Records that the symbol's stream holds its events up to `eventSeq`. */
  private noteStored(symbol: string, eventSeq: number): void {
    if (eventSeq > (this.known.get(symbol) ?? 0)) this.known.set(symbol, eventSeq);
  }

  /**
   * Sends `msg` now, or holds it (see `gates`): a message up to the last event the stream is known
   * to hold goes out and is counted in the symbol's gate; a later one waits while any of those is
   * in flight, and fails with their error if one of them failed.
   */
  private gated(msg: BusMessage, done: AckCallback): boolean {
    const symbol = msg.symbol;
    let gate = this.gates.get(symbol);
    if (msg.eventSeq <= (this.known.get(symbol) ?? 0)) {
      if (gate === undefined) {
        gate = { inFlight: 0, held: [], failed: undefined };
        this.gates.set(symbol, gate);
      }
      const g = gate;
      g.inFlight++;
      this.send(msg, (err, ack) => {
        g.inFlight--;
        if (err !== null) g.failed ??= err;
        done(err, ack);
        if (g.inFlight === 0) this.release(symbol, g);
      });
      return true;
    }
    if (gate === undefined) return false;
    gate.held.push({ msg: copyOf(msg), done });
    return true;
  }

  /** Sends (or fails, if one before them failed) the messages held behind a gate, and removes it. */
  private release(symbol: string, gate: Gate): void {
    if (this.gates.get(symbol) === gate) this.gates.delete(symbol);
    const failed = gate.failed;
    for (const h of gate.held) {
      if (failed !== undefined) h.done(new OutboxError(failed instanceof OutboxError ? failed.code : 'BUS_ERROR', `not sent: an earlier event of ${symbol} failed (${failed.message})`, { cause: failed }));
      else this.publish(h.msg, h.done);
    }
  }

  publish(msg: BusMessage, done: AckCallback): void {
    if (this.closed) {
      done(new OutboxError('BUS_CLOSED', 'the NATS bus is closed'));
      return;
    }
    if (this.ready.get(msg.symbol) !== (msg.history ?? '')) {
      // The payload is only valid during this call: keep a copy while the stream is being made.
      const kept = copyOf(msg);
      this.ensureStream(msg.symbol, msg.history).then(
        () => {
          this.publish(kept, done);
        },
        (err: unknown) => {
          done(err instanceof Error ? err : new Error(String(err)));
        },
      );
      return;
    }
    if (this.gated(msg, done)) return;
    this.send(msg, done);
  }

  /** Publishes `msg` on the core connection, its acknowledgement matched by `onAck`. */
  private send(msg: BusMessage, done: AckCallback): void {
    const token = (this.nextToken++).toString(36);
    const h = headers();
    h.set('Nats-Msg-Id', msg.id);
    if (msg.history !== undefined) h.set(HISTORY_HEADER, msg.history);
    // The order check: after the previous event, or, for a symbol's first event, into a subject that
    // holds nothing yet (without it, a first event published again after the duplicate window would
    // be stored twice, and every later one would then pass the check).
    const resync = this.resync.get(msg.symbol);
    if (resync !== undefined && resync.previousId === msg.previousId) {
      this.resync.delete(msg.symbol);
      h.set('Nats-Expected-Last-Subject-Sequence', String(resync.seq));
    } else if (msg.previousId !== undefined) h.set('Nats-Expected-Last-Msg-Id', msg.previousId);
    else h.set('Nats-Expected-Last-Subject-Sequence', '0');
    const payload = new Uint8Array(msg.payload);
    this.pending.set(token, {
      done,
      deadline: Date.now() + this.options.ackTimeoutMs,
      symbol: msg.symbol,
      eventSeq: msg.eventSeq,
      history: msg.history,
      length: payload.length,
      crc: crc32(payload, 0, payload.length),
    });
    try {
      // The client queues the bytes until its next flush: give it a copy of the payload, which is
      // only valid during this call.
      this.nc.publish(this.subject(msg.symbol), payload, { reply: `${this.inbox}.${token}`, headers: h });
    } catch (err) {
      this.pending.delete(token);
      done(new OutboxError('BUS_ERROR', `publish of ${msg.id} failed: ${(err as Error).message}`, { cause: err }));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.failAll(new OutboxError('BUS_CLOSED', 'the NATS bus was closed with acknowledgements pending'));
    try {
      this.sub.unsubscribe();
      await this.nc.drain();
    } catch {
      await this.nc.close();
    }
  }

  private async createOrCheck(symbol: string): Promise<void> {
    const name = this.stream(symbol);
    const subject = this.subject(symbol);
    try {
      const info = await this.jsm.streams.info(name);
      if (!info.config.subjects.includes(subject)) {
        throw new OutboxError('BUS_ERROR', `stream ${name} exists but does not hold subject ${subject} (it holds ${info.config.subjects.join(', ')})`);
      }
      return;
    } catch (err) {
      if (err instanceof OutboxError) throw err;
      if (!/not found/i.test((err as Error).message)) {
        throw new OutboxError('BUS_ERROR', `cannot look up stream ${name}: ${(err as Error).message}`, { cause: err });
      }
    }
    try {
      await this.jsm.streams.add({
        name,
        subjects: [subject],
        duplicate_window: this.options.duplicateWindowMs * 1_000_000,
        storage: this.options.storage,
      });
    } catch (err) {
      throw new OutboxError('BUS_ERROR', `cannot create stream ${name}: ${(err as Error).message}`, { cause: err });
    }
  }

  private onAck(err: Error | null, msg: Msg): void {
    const token = msg.subject.slice(this.inbox.length + 1);
    const p = this.pending.get(token);
    if (!p) return; // timed out already
    this.pending.delete(token);
    if (err) {
      p.done(new OutboxError('BUS_ERROR', err.message, { cause: err }));
      return;
    }
    if (msg.headers?.hasError === true) {
      // 503, no responders: no stream takes the subject (deleted, say): make or check it again first.
      if (msg.headers.code === 503) this.forgetStream(p.symbol);
      p.done(new OutboxError('BUS_ERROR', `JetStream answered ${msg.headers.code} ${msg.headers.description}`));
      return;
    }
    let ack: { duplicate?: boolean; seq?: number; error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = msg.json();
    } catch (e) {
      p.done(new OutboxError('BUS_ERROR', `unreadable JetStream acknowledgement: ${(e as Error).message}`));
      return;
    }
    if (ack.error) {
      const refused = `JetStream refused the message: ${ack.error.description ?? 'unknown error'} (${ack.error.err_code ?? ack.error.code ?? '?'})`;
      if (ack.error.err_code === ERR_WRONG_LAST_MSG_ID || ack.error.err_code === ERR_WRONG_LAST_SEQUENCE) {
        this.settleOrderRefusal(p, refused);
        return;
      }
      p.done(new OutboxError('BUS_ERROR', refused));
      return;
    }
    if (ack.duplicate === true && typeof ack.seq === 'number') {
      this.settleDuplicate(p, ack.seq);
      return;
    }
    this.noteStored(p.symbol, p.eventSeq);
    p.done(null, ack.duplicate === true ? DUPLICATE : STORED);
  }

  /**
   * A duplicate by its id (inside the duplicate window) is one only if the stored message is of the
   * same history and holds the same bytes: ids repeat across histories, and within one history after
   * a loss of published events. Duplicates are rare (a republish after a rewind or a restart), so the
   * stored message (`seq`) is read to tell.
   */
  private settleDuplicate(p: Pending, seq: number): void {
    const stream = this.stream(p.symbol);
    this.jsm.streams
      .getMessage(stream, { seq })
      .then(async (stored) => {
        if (stored !== null) {
          // The same id with other bytes: the outbox lost events that were published (durability
          // none and a power loss), and its new events reuse their ids.
          if (stored.data.length !== p.length || crc32(stored.data, 0, stored.data.length) !== p.crc) {
            throw new OutboxError(
              'EVENT_MISMATCH',
              `${stream} holds event ${p.symbol}:${p.eventSeq} with other content than the outbox's: the outbox lost events that were published (a power loss under durability none?), and the stream's copies are not this history's`,
            );
          }
          return stored;
        }
        // The stored message is gone (purged, or discarded by the stream's limits) but its id is still
        // in the duplicate window: only the subject's last event can vouch for the history.
        const last = await this.jsm.streams.getMessage(stream, { last_by_subj: this.subject(p.symbol) }).catch(() => null);
        if (last === null) {
          throw new OutboxError('BUS_ERROR', `JetStream took event ${p.symbol}:${p.eventSeq} for a duplicate of message ${seq}, which ${stream} no longer holds: retried until the duplicate window has passed`);
        }
        return last;
      })
      .then(
      (stored) => {
        const mismatch = historyMismatch(stream, p.symbol, p.history, stored.header.get(HISTORY_HEADER), stored.header.get('Nats-Msg-Id'));
        if (mismatch) p.done(mismatch);
        else {
          this.noteStored(p.symbol, p.eventSeq);
          p.done(null, DUPLICATE);
        }
      },
      (err: unknown) => {
        if (err instanceof OutboxError) p.done(err);
        else p.done(new OutboxError('BUS_ERROR', `JetStream took event ${p.symbol}:${p.eventSeq} for a duplicate; reading the stored message ${seq} failed: ${(err as Error).message}`, { cause: err }));
      },
    );
  }

  /**
   * A refusal by the order check: the message is a duplicate if the subject already holds it (its
   * last message is this event or a later one: a restart from an older cursor after the duplicate
   * window, which no longer recognises the ids), OUT_OF_ORDER otherwise (a gap: the publisher
   * rewinds). The subject's events are stored in order without gaps, so its last one tells.
   */
  private settleOrderRefusal(p: Pending, refused: string): void {
    this.jsm.streams.getMessage(this.stream(p.symbol), { last_by_subj: this.subject(p.symbol) }).then(
      (last) => {
        const mismatch = historyMismatch(this.stream(p.symbol), p.symbol, p.history, last?.header.get(HISTORY_HEADER), last?.header.get('Nats-Msg-Id'));
        if (mismatch) {
          p.done(mismatch);
          return;
        }
        const storedId = last?.header.get('Nats-Msg-Id');
        let stored = eventSeqOf(storedId);
        if (last === null) {
          // An empty subject: lost events, or a purge (or an age limit) that kept nothing. The
          // refusal names the last id JetStream still knows (it keeps it across a purge): at or
          // past this event, the event was stored; none (or another symbol's), the bus holds nothing.
          const known = /wrong last msg ID: ?(\S*)/.exec(refused)?.[1];
          if (known !== undefined && known.startsWith(`${p.symbol}:`)) stored = eventSeqOf(known);
        }
        if (stored >= p.eventSeq) {
          this.noteStored(p.symbol, p.eventSeq);
          p.done(null, DUPLICATE);
          return;
        }
        if (last !== null && stored === p.eventSeq - 1 && storedId !== undefined) {
          // In order after all: JetStream no longer knew the last message's id (a server restart
          // after the duplicate window). The retry is checked by the subject's sequence instead.
          this.resync.set(p.symbol, { previousId: storedId, seq: last.seq });
        }
        p.done(new OutboxError('OUT_OF_ORDER', refused, { busLastEventSeq: Math.max(0, stored) }));
      },
      (err: unknown) => {
        p.done(new OutboxError('BUS_ERROR', `${refused}; looking up the subject's last message failed: ${(err as Error).message}`, { cause: err }));
      },
    );
  }

  private sweep(): void {
    if (this.pending.size === 0) return;
    const now = Date.now();
    for (const [token, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(token);
        p.done(new OutboxError('PUBLISH_TIMEOUT', `no JetStream acknowledgement within ${this.options.ackTimeoutMs} ms`));
      }
    }
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.done(err);
  }
}

/**
 * The error for a stored event (id `storedId`) of history `stored` met when publishing one of
 * `history`, or undefined if they agree or either is unknown (events published without history ids).
 */
function historyMismatch(stream: string, symbol: string, history: string | undefined, stored: string | undefined, storedId: string | undefined): OutboxError | undefined {
  if (history === undefined || stored === undefined || stored === '' || stored === history) return undefined;
  return new OutboxError(
    'HISTORY_MISMATCH',
    `stream ${stream} holds events of ${symbol} from another outbox history (${stored}, event ${storedId ?? '?'}), not this outbox's (${history}): ` +
      'its event ids would be taken for duplicates of those. Was the data directory replaced? Delete or rename the stream, or publish to another stream prefix',
  );
}

/** A message kept past the `publish` call (its payload is only valid during the call). */
function copyOf(msg: BusMessage): BusMessage {
  return { symbol: msg.symbol, eventSeq: msg.eventSeq, id: msg.id, previousId: msg.previousId, payload: new Uint8Array(msg.payload), event: msg.event, history: msg.history };
}

/**
 * A symbol's gate (see `gates`): its messages in flight that the stream may hold already, the
 * later ones held until those settle, and the first failure among them.
 */
interface Gate {
  inFlight: number;
  held: { msg: BusMessage; done: AckCallback }[];
  failed: Error | undefined;
}

const DUPLICATE: PublishAck = { duplicate: true };
const STORED: PublishAck = { duplicate: false };
