// The bus the publisher delivers events to. A bus stores the events of a symbol in order and at
// most once: a message carries its id (`<symbol>:<eventSeq>`) and the id of the event published
// before it, and the bus
//   - acknowledges a message whose id it already holds as a duplicate, without storing it again;
//   - refuses (OUT_OF_ORDER) a message whose previous id is not the last id it holds for the symbol,
//     so that a failed publish followed by successful ones can never leave a gap or reorder events;
//   - otherwise stores it and acknowledges it.
// The publisher relies on exactly that to publish with many messages in flight and still deliver
// every event exactly once, in order, across failures and restarts.

import type { Codec, Event } from '@gx3/codecs';
import { OutboxError } from './errors.js';

export interface BusMessage {
  readonly symbol: string;
  readonly eventSeq: number;
  /** `<symbol>:<eventSeq>`: the message's identity for de-duplication. */
  readonly id: string;
  /** The id of the symbol's previous event, or undefined for its first event. */
  readonly previousId: string | undefined;
  /**
   * The event as the outbox stored it (its codec's encoding). Valid only until `publish` returns
   * (it may view the publisher's read buffer): a bus that keeps the bytes longer copies them.
   */
  readonly payload: Uint8Array;
  /**
   * The event, decoded. Like the payload, read it before `publish` returns (the publisher decodes
   * it from the payload only if a bus asks for it); a bus that keeps the message uses `detach()`
   * of an EventMessage, or copies what it needs.
   */
  readonly event: Event;
  /**
   * The id of the outbox history the event belongs to (history.ts), if its outbox has one. A bus
   * that keeps events across restarts refuses a history other than the one it holds for the symbol
   * (HISTORY_MISMATCH): event ids repeat across histories.
   */
  readonly history?: string | undefined;
}

export interface PublishAck {
  /** The bus already held this message. */
  readonly duplicate: boolean;
}

export type AckCallback = (err: Error | null, ack?: PublishAck) => void;

export interface Bus {
  readonly name: string;
  /** Publishes one message; `done` is called once, with its acknowledgement or an error. */
  publish(msg: BusMessage, done: AckCallback): void;
  /**
   * Optional, for a bus that stores a message before returning (an in-process bus): publishes one
   * message and returns its acknowledgement, or throws what `publish` would have passed to `done`.
   * The publisher then uses only this, and keeps no per-message bookkeeping for acknowledgements.
   */
  publishNow?(msg: BusMessage): PublishAck;
  /** Stops accepting messages and releases connections; pending acknowledgements fail. */
  close(): Promise<void>;
}

/** The message id of an event. */
export function messageId(symbol: string, eventSeq: number): string {
  return `${symbol}:${eventSeq}`;
}

/**
 * A BusMessage over a record of the publisher's read buffer: its ids, payload view and decoded
 * event are made only when a bus asks for them. Once `publish` has returned, the publisher
 * releases it: reading its payload or an event not decoded yet then throws MESSAGE_RELEASED
 * instead of returning bytes the buffer has been reused for.
 */
export class EventMessage implements BusMessage {
  private decoded: Event | undefined;
  private released = false;
  /** The outbox history's id (set by the publisher). */
  history: string | undefined = undefined;

  constructor(
    readonly symbol: string,
    readonly eventSeq: number,
    private readonly buf: Uint8Array,
    private readonly start: number,
    private readonly end: number,
    private readonly codec: Codec,
    event?: Event,
  ) {
    this.decoded = event;
  }

  get payload(): Uint8Array {
    if (this.released) throw released(this.id);
    return this.buf.subarray(this.start, this.end);
  }

  get event(): Event {
    this.decoded ??= this.codec.decode(this.payload) as Event;
    return this.decoded;
  }

  /** A message that owns a copy of its payload and its decoded event (valid after publish returns). */
  detach(): BusMessage {
    const m = new EventMessage(this.symbol, this.eventSeq, new Uint8Array(this.payload), 0, this.end - this.start, this.codec, this.event);
    m.history = this.history;
    return m;
  }

  /** Called by the publisher once `publish` has returned. */
  release(): void {
    this.released = true;
  }

  get id(): string {
    return messageId(this.symbol, this.eventSeq);
  }

  get previousId(): string | undefined {
    return this.eventSeq > 1 ? messageId(this.symbol, this.eventSeq - 1) : undefined;
  }
}

function released(id: string): OutboxError {
  return new OutboxError('MESSAGE_RELEASED', `message ${id} was read after publish returned: its bytes are gone (a bus that keeps a message must detach() it during publish)`);
}
