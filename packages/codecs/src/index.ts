export {
  AMEND_KINDS,
  CANCEL_REASONS,
  COMMAND_TYPES,
  EVENT_TYPES,
  MESSAGE_TYPES,
  ORDER_TYPES,
  REJECT_REASONS,
  SELF_TRADE_PREVENTIONS,
  SIDES,
  TIMES_IN_FORCE,
  type AcceptedEvent,
  type AddedEvent,
  type AmendCommand,
  type AmendKind,
  type AmendedEvent,
  type CancelCommand,
  type CanceledEvent,
  type CancelReason,
  type CmdEndEvent,
  type Command,
  type CommandType,
  type Event,
  type EventType,
  type LimitCommand,
  type MarketCommand,
  type Message,
  type MessageType,
  type OrderType,
  type RejectedEvent,
  type RejectReason,
  type SelfTradePrevention,
  type Side,
  type TimeInForce,
  type TradeEvent,
} from './types.js';
export { CodecError, DecodeError, EncodeError, type CodecErrorCode } from './errors.js';
export { CODEC_NAMES, codecByName, type Codec, type CodecName } from './codec.js';
export { JSON_MAX_LENGTH, JSON_VERSION, JsonCodec, jsonCodec } from './json-codec.js';
export {
  BINARY_LAYOUTS,
  BINARY_MAX_LENGTH,
  BINARY_TYPE_TAGS,
  BINARY_VERSION,
  BinaryCodec,
  binaryCodec,
  type BinaryField,
} from './binary-codec.js';
export { DecodedMessage } from './decoded-message.js';
export { isValidSymbol, MAX_SYMBOL_LENGTH } from './internal/schema.js';
export { fractionalNumber, fractionalNumbers, type FractionalNumber } from './fractional-number.js';
