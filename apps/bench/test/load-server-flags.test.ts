// The load suite measures the gateway as `pnpm start` runs it: its servers (the bare baselines
// too, so that the comparison is fair) get the Node flags of the start scripts.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SERVER_NODE_FLAGS } from '../src/load/servers.js';
import type * as Servers from '../src/load/servers.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function startScript(pkg: string): string {
  return (JSON.parse(fs.readFileSync(path.join(ROOT, pkg), 'utf8')) as { scripts: { start: string } }).scripts.start;
}

/** The Node flags before the script in a `node ... script.js` command. */
function nodeFlags(command: string): string[] {
  const words = command.split('&&').pop()?.trim().split(/\s+/) ?? [];
  expect(words[0]).toBe('node');
  return words.slice(1, words.findIndex((w) => w.endsWith('.js')));
}

describe('the load suite runs its servers with the Node flags of pnpm start', () => {
  it('the root and apps/server start scripts pass the same flags as the load suite', () => {
    expect(SERVER_NODE_FLAGS.length).toBeGreaterThan(0);
    expect(nodeFlags(startScript('package.json'))).toEqual([...SERVER_NODE_FLAGS]);
    expect(nodeFlags(startScript('apps/server/package.json'))).toEqual([...SERVER_NODE_FLAGS]);
  });

  it.runIf(process.platform === 'linux')('a started bare server process runs with them', async () => {
    // The built suite (its servers are the built load-server.js).
    const built = (await import(path.join(ROOT, 'apps/bench/dist/load/servers.js'))) as typeof Servers;
    const s = await built.startLoadServer('bare-ws');
    try {
      const argv = fs.readFileSync(`/proc/${s.child.pid as number}/cmdline`, 'utf8').split('\0');
      const script = argv.findIndex((a) => a.endsWith('load-server.js'));
      expect(argv.slice(1, script)).toEqual([...SERVER_NODE_FLAGS]);
      expect(argv[script + 1]).toBe('bare-ws');
    } finally {
      await built.stopLoadServer(s);
    }
  });
});
