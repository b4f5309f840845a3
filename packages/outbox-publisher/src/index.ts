export { EventMessage, messageId, type AckCallback, type Bus, type BusMessage, type PublishAck } from './bus.js';
export { CURSOR_FILE, readCursor, writeCursor, writeCursorAsync, type CursorState } from './cursor.js';
export { ensureHistory, HISTORY_FILE, readHistory, renewHistory } from './history.js';
export { OutboxError, type OutboxErrorCode } from './errors.js';
export { MemoryBus, type MemoryBusOptions, type Subscriber } from './memory-bus.js';
export { HISTORY_HEADER, NatsJetStreamBus, streamName, streamPrefixProblem, subjectPrefixProblem, withoutCredentials, type NatsBusOptions } from './nats-bus.js';
export { EventOutbox, type OutboxOptions } from './outbox.js';
export { Publisher, type OutboxSource, type PublisherOptions, type PublisherStats } from './publisher.js';
