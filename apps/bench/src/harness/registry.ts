// Every suite of `pnpm bench`, in the order they run.

import { COMPARE_SUITE } from './suites-compare.js';
import { CORE_SUITES } from './suites-core.js';
import { ENGINE_SUITES } from './suites-engine.js';
import { SERVER_SUITES } from './suites-server.js';
import type { SuiteDef } from './types.js';

export const SUITES: readonly SuiteDef[] = [...CORE_SUITES, ...ENGINE_SUITES, ...SERVER_SUITES, COMPARE_SUITE];

export function suiteById(id: string): SuiteDef | undefined {
  return SUITES.find((s) => s.id === id);
}
