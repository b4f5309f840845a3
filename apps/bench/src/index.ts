export { BenchError, CsvParseError, type BenchErrorCode } from './errors.js';
export { DEFAULT_MIX, generate, generateText, type GeneratorOptions } from './generator.js';
export { apply, bookFor, replay, type ReplayOptions, type ReplayPerf, type ReplayResult } from './replay.js';
export { ChunkedHasher, summarize, summarizeBook, SummarySink, type BookSummary, type ReplaySummary } from './summary.js';
export { OpKind, parseWorkload, type Workload } from './workload.js';
export { commandAt, recoverEngine, replayEngine, summaryFromOutbox, type EnginePerf, type EngineReplayOptions } from './engine-replay.js';
