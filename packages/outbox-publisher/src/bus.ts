// The bus the publisher delivers events to. A bus stores the events of a symbol in order and at
// most once: a message carries its id (`<symbol>:<eventSeq>`) and the id of the event published
// before it, and the bus
//   - acknowledges a message whose id it already holds as a duplicate, without storing it again;
//   - refuses (OUT_OF_ORDER) a message whose previous id is not the last id it holds for the symbol,
//     so that a failed publish followed by successful ones can never leave a gap or reorder events;
//   - otherwise stores it and acknowledges it.
// The publisher relies on exactly that to publish with many messages in flight and still deliver
// every event exactly once, in order, across failures and restarts.

import type { Event } from '@gx3/codecs';

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
  /** The event, decoded. */
  readonly event: Event;
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
  /** Stops accepting messages and releases connections; pending acknowledgements fail. */
  close(): Promise<void>;
}

/** The message id of an event. */
export function messageId(symbol: string, eventSeq: number): string {
  return `${symbol}:${eventSeq}`;
}

/** A BusMessage whose ids and payload view are made only when a bus asks for them. */
export class EventMessage implements BusMessage {
  constructor(
    readonly event: Event,
    private readonly buf: Uint8Array,
    private readonly start: number,
    private readonly end: number,
  ) {}
  get payload(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }
  /** A message that owns a copy of its payload (valid after publish returns). */
  detach(): BusMessage {
    return new EventMessage(this.event, new Uint8Array(this.buf.subarray(this.start, this.end)), 0, this.end - this.start);
  }
  get symbol(): string {
    return this.event.symbol;
  }
  get eventSeq(): number {
    return this.event.eventSeq;
  }
  get id(): string {
    return messageId(this.event.symbol, this.event.eventSeq);
  }
  get previousId(): string | undefined {
    return this.event.eventSeq > 1 ? messageId(this.event.symbol, this.event.eventSeq - 1) : undefined;
  }
}
