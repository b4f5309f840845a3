// The event outbox: the engine's events, each followed by its command's `CmdEnd` marker, appended
// to a write-ahead log in the order the engine produced them. Events are encoded straight into the
// log's append buffer (no intermediate buffer, no allocation per append: the seed's escape fix), and
// `CmdEnd` markers are encoded from one reused object.

import { codecByName, type Codec, type CodecName, type CmdEndEvent, type Event } from '@gx3/codecs';
import { WalWriter, type WalOptions } from '@gx3/wal';
import { OutboxError } from './errors.js';
import { ensureHistory, readHistories, renewHistory } from './history.js';

export interface OutboxOptions extends WalOptions {
  /** The codec of the stored events (default `binary`). */
  readonly codec?: Codec | CodecName;
}

export class EventOutbox {
  readonly log: WalWriter;
  readonly codec: Codec;
  private historyId: string;
  private readonly cmdEnd: CmdEndEvent = { type: 'cmdEnd', symbol: '', seq: 0, eventSeq: 0, ts: 0, events: 0 };

  private constructor(dir: string, options: OutboxOptions) {
    this.codec = typeof options.codec === 'object' ? options.codec : codecByName(options.codec ?? 'binary');
    if (this.codec.maxLength > (options.maxRecordSize ?? 1 << 20)) {
      throw new OutboxError('INVALID_OPTIONS', `maxRecordSize must hold the codec's longest record (${this.codec.maxLength} bytes)`);
    }
    this.log = WalWriter.open(dir, options);
    try {
      this.historyId = ensureHistory(dir);
    } catch (err) {
      this.log.abort();
      throw err;
    }
  }

  /** Opens (creating if needed) the outbox log in `dir`; a torn tail is repaired (see `log.repaired`). */
  static open(dir: string, options: OutboxOptions = {}): EventOutbox {
    return new EventOutbox(dir, options);
  }

  /** The id of this outbox's history (history.ts), made when the outbox was first opened. */
  get history(): string {
    return this.historyId;
  }

  /** The history id before the last renewal (undefined if it was never renewed). */
  get previousHistory(): string | undefined {
    return readHistories(this.log.dir)?.previous;
  }

  /** Starts a new history (see `renewHistory`): for an outbox that lost events a bus may hold. */
  renewHistory(): string {
    this.historyId = renewHistory(this.log.dir);
    return this.historyId;
  }

  /** Appends one event. */
  append(event: Event): void {
    const log = this.log;
    const at = log.reserve(this.codec.maxLength);
    let n: number;
    try {
      n = this.codec.encode(event, log.buffer, at);
    } catch (err) {
      log.abandon();
      throw err;
    }
    log.commit(n);
  }

  /** Appends the boundary after the last event of command `seq`; `eventSeq` is the last event sequence number used. */
  appendCmdEnd(symbol: string, seq: number, eventSeq: number, events: number, ts: number): void {
    const m = this.cmdEnd;
    m.symbol = symbol;
    m.seq = seq;
    m.eventSeq = eventSeq;
    m.events = events;
    m.ts = ts;
    this.append(m);
  }

  get durableOffset(): number {
    return this.log.durableOffset;
  }

  get nextOffset(): number {
    return this.log.nextOffset;
  }

  flush(): number {
    return this.log.flush();
  }

  sync(): Promise<number> {
    return this.log.sync();
  }

  onDurable(listener: (offset: number) => void): () => void {
    return this.log.onDurable(listener);
  }

  close(): Promise<void> {
    return this.log.close();
  }
}
