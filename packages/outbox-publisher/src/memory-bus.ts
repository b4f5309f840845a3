// The in-process bus, the embedded default: fans each event out to its subscribers, synchronously,
// in order. It keeps the bus contract of bus.ts: a message at or below the symbol's last event
// sequence number is a duplicate; one whose previous id is not the symbol's last is refused
// (OUT_OF_ORDER). A bus that holds nothing of a symbol yet (it lives in memory, so after every
// restart) accepts that symbol's next message whatever its previous id.

import type { Event } from '@gx3/codecs';
import { EventMessage, messageId, type AckCallback, type Bus, type BusMessage, type PublishAck } from './bus.js';
import { OutboxError } from './errors.js';

/** Receives each stored event; `msg.payload` is valid only during the call. */
export type Subscriber = (event: Event, msg: BusMessage) => void;

export interface MemoryBusOptions {
  /** Keep every stored message (for tests and small tools; grows without bound). Default false. */
  readonly retain?: boolean;
  /** Called when a subscriber throws (the message stays acknowledged). Default: ignore. */
  readonly onSubscriberError?: (err: unknown, msg: BusMessage) => void;
}

export class MemoryBus implements Bus {
  readonly name = 'memory';
  private readonly last = new Map<string, number>();
  private readonly subs = new Map<string, Set<Subscriber>>();
  private readonly stored = new Map<string, BusMessage[]>();
  private closed = false;

  constructor(private readonly options: MemoryBusOptions = {}) {}

  /** Calls `fn` with every event of `symbol` (or of every symbol, with `*`) stored from now on. */
  subscribe(symbol: string, fn: Subscriber): () => void {
    let set = this.subs.get(symbol);
    if (!set) {
      set = new Set();
      this.subs.set(symbol, set);
    }
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }

  /** With `retain`: every message stored for `symbol`, in order. */
  messages(symbol: string): readonly BusMessage[] {
    return this.stored.get(symbol) ?? [];
  }

  /** The last event sequence number stored for `symbol` (0: none). */
  lastEventSeq(symbol: string): number {
    return this.last.get(symbol) ?? 0;
  }

  publish(msg: BusMessage, done: AckCallback): void {
    let ack: PublishAck;
    try {
      ack = this.publishNow(msg);
    } catch (err) {
      done(err as Error);
      return;
    }
    done(null, ack);
  }

  publishNow(msg: BusMessage): PublishAck {
    if (this.closed) throw new OutboxError('BUS_CLOSED', 'the memory bus is closed');
    // Event sequence numbers have no gaps, so the previous id is the previous sequence number.
    const last = this.last.get(msg.symbol);
    if (last !== undefined) {
      if (msg.eventSeq <= last) return DUPLICATE;
      if (msg.eventSeq !== last + 1) {
        throw new OutboxError('OUT_OF_ORDER', `message ${msg.id} follows ${msg.previousId ?? 'nothing'}, but the last message of ${msg.symbol} is ${messageId(msg.symbol, last)}`, { busLastEventSeq: last });
      }
    }
    // What can fail (copying a released message, decoding its event) comes before the message is
    // taken as held: a failed publish leaves the bus as it was, so that its retry is stored, not
    // answered as a duplicate of a message the bus never kept.
    const copy =
      this.options.retain !== true
        ? undefined
        : msg instanceof EventMessage
          ? msg.detach()
          : { symbol: msg.symbol, eventSeq: msg.eventSeq, id: msg.id, previousId: msg.previousId, payload: new Uint8Array(msg.payload), event: msg.event };
    const own = this.subs.get(msg.symbol);
    const all = this.subs.get('*');
    const event = (own !== undefined && own.size > 0) || (all !== undefined && all.size > 0) ? msg.event : undefined;
    this.last.set(msg.symbol, msg.eventSeq);
    if (copy !== undefined) {
      let list = this.stored.get(msg.symbol);
      if (!list) {
        list = [];
        this.stored.set(msg.symbol, list);
      }
      list.push(copy);
    }
    if (event !== undefined) {
      this.deliver(own, event, msg);
      this.deliver(all, event, msg);
    }
    return STORED;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  private deliver(set: Set<Subscriber> | undefined, event: Event, msg: BusMessage): void {
    if (!set) return;
    for (const fn of set) {
      try {
        fn(event, msg);
      } catch (err) {
        try {
          this.options.onSubscriberError?.(err, msg);
        } catch {
          // The handler's own failure must not keep the other subscribers from the event, nor fail
          // a publish whose message is stored already.
        }
      }
    }
  }
}

const DUPLICATE = { duplicate: true } as const;
const STORED = { duplicate: false } as const;
