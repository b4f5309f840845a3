export { crc32 } from './crc32.js';
export { WalError, type WalErrorCode } from './errors.js';
export { nodeFileIO, type FileIO } from './file-io.js';
export { WalReader, WalRecord, type ReaderOptions } from './reader.js';
export { HEADER, scanSegment, type ScanResult, type ScanStatus } from './scan.js';
export { listSegments, segmentName, type SegmentRef } from './segments.js';
export { repairLog, truncateLog, verifyLog, type CheckOptions, type VerifyResult } from './verify.js';
export { WalWriter, type Durability, type TornTailRepair, type WalOptions } from './writer.js';
export { replaceFileSync } from './replace-file.js';
