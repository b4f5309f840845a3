// Starting and stopping the load suite's servers, each in its own process (bin/load-server.js):
// the gx3 gateway on a fresh data directory, or a bare baseline.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BenchError } from '../errors.js';

const SERVER_JS = fileURLToPath(new URL('../bin/load-server.js', import.meta.url));

/**
 * Node's flags for every server of the suite, the bare baselines included: those of `pnpm start`
 * (a 64 MiB young-generation semi-space, see apps/server's README), so that the suite measures the
 * gateway as it is run.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

export interface StartedServer {
  readonly port: number;
  readonly child: ChildProcess;
}

export function startLoadServer(kind: 'gx3' | 'bare-http' | 'bare-ws', dataDir?: string): Promise<StartedServer> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, SERVER_JS, kind, ...(dataDir === undefined ? [] : [dataDir])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /port (\d+)/.exec(out);
      if (m) resolve({ port: Number(m[1]), child });
    });
    child.on('exit', (code) => {
      reject(new BenchError('IO', `${kind} server exited (${String(code)}) before listening`));
    });
  });
}

export function stopLoadServer(s: StartedServer): Promise<void> {
  return new Promise((resolve) => {
    if (s.child.exitCode !== null) {
      resolve();
      return;
    }
    s.child.once('exit', () => {
      resolve();
    });
    s.child.kill('SIGTERM');
  });
}

/** Runs `run` against a fresh server of `kind`, then stops it. */
export async function withLoadServer<T>(kind: 'gx3' | 'bare-http' | 'bare-ws', dataDir: string | undefined, run: (port: number) => Promise<T>): Promise<T> {
  const s = await startLoadServer(kind, dataDir);
  try {
    return await run(s.port);
  } finally {
    await stopLoadServer(s);
  }
}
