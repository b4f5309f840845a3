export { defaultClock, Engine, isReservedName, type EngineOptions } from './engine.js';
export { EngineError, type EngineErrorCode } from './errors.js';
export { EngineSink } from './event-sink.js';
export {
  SymbolActor,
  type ActorOptions,
  type CommandOutcome,
  type RecoveryReport,
  type Refusal,
  type SymbolConfig,
} from './symbol-actor.js';
