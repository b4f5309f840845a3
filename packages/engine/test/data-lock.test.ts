// One engine per data directory: a second open, from this process or another one, is refused with
// LOCKED while the first engine runs; a lock left by a process that is gone (a crash), or by an
// earlier process that had this pid, is taken over; a lock that cannot be checked (another host,
// a file being written) is refused; closing, and a failed open, remove the lock; a process killed
// while taking the lock leaves nothing that blocks the next engine.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, EngineError } from '../src/index.js';
import { cmdDirOf, limit, PACKAGE_DIR, removeTmpDirs, SEGMENT, tmpDir } from './helpers.js';

const SYM = 'BTCUSDT';
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  removeTmpDirs();
});

function open(dataDir: string): Promise<Engine> {
  return Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT });
}

async function lockedError(p: Promise<unknown>): Promise<EngineError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EngineError);
  expect((err as EngineError).code).toBe('LOCKED');
  return err as EngineError;
}

function lockOf(dataDir: string): { pid: number; host: string; since: string; guard?: string } {
  return JSON.parse(fs.readFileSync(path.join(dataDir, 'LOCK'), 'utf8')) as { pid: number; host: string; since: string; guard?: string };
}

/** A child process that opens an engine on `dataDir` and waits; resolves once it holds the lock. */
async function holder(dataDir: string): Promise<ChildProcess> {
  const engine = pathToFileURL(path.join(PACKAGE_DIR, 'dist/index.js')).href;
  const script = `const { Engine } = await import(${JSON.stringify(engine)});
await Engine.open({ dataDir: ${JSON.stringify(dataDir)}, symbols: [{ symbol: 'BTCUSDT' }], durability: 'batch', segmentSize: ${SEGMENT} });
process.stdout.write('ready\\n');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => {
      reject(new Error(`the holder exited (${String(code)}) before opening the engine`));
    });
  });
  return child;
}

/** A lock of this host whose process is gone (a process that has exited). */
async function staleLock(): Promise<{ pid: number; host: string; since: string }> {
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((r) => gone.once('exit', r));
  return { pid: gone.pid as number, host: os.hostname(), since: '2026-01-01T00:00:00.000Z' };
}

function killAndReap(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => {
      resolve();
    });
    child.kill('SIGKILL');
  });
}

describe('the data directory lock', () => {
  it('refuses a second engine of this process while the first is open, and is removed by close', async () => {
    const dataDir = tmpDir();
    const first = await open(dataDir);
    expect(lockOf(dataDir)).toMatchObject({ pid: process.pid, host: os.hostname() });
    const err = await lockedError(open(dataDir));
    expect(err.message).toContain(`pid ${process.pid}`);
    // The refused open touched nothing: the first engine still works.
    await expect(first.submit(limit(SYM, 1, 'buy', 100, 1))).resolves.toMatchObject({ seq: 1 });
    await first.close();
    expect(fs.existsSync(path.join(dataDir, 'LOCK'))).toBe(false);
    const second = await open(dataDir);
    expect(second.actor(SYM)?.recovery.commands).toBe(1);
    await second.close();
  });

  it('the same directory through a symbolic link is the same lock', async () => {
    const dataDir = tmpDir();
    const link = path.join(tmpDir(), 'link');
    fs.symlinkSync(dataDir, link);
    const first = await open(dataDir);
    try {
      const err = await lockedError(open(link));
      expect(err.message).toContain(`pid ${process.pid}`);
    } finally {
      await first.close();
    }
    const viaLink = await open(link);
    await viaLink.close();
  });

  it('two copies of the engine package in one process share their locks (the built one refuses a directory the source one holds)', async () => {
    const dataDir = tmpDir();
    const built = (await import(pathToFileURL(path.join(PACKAGE_DIR, 'dist/index.js')).href)) as { Engine: typeof Engine };
    expect(built.Engine).not.toBe(Engine);
    const first = await open(dataDir);
    try {
      const err = await built.Engine.open({ dataDir, symbols: [{ symbol: SYM }], durability: 'batch', segmentSize: SEGMENT }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as { code?: string } | undefined)?.code).toBe('LOCKED');
    } finally {
      await first.close();
    }
  });

  it('refuses an engine while another process holds the directory, and takes the lock over once that process is killed', async () => {
    const dataDir = tmpDir();
    const child = await holder(dataDir);
    const err = await lockedError(open(dataDir));
    expect(err.message).toContain(`process ${String(child.pid)} on ${os.hostname()}`);
    expect(fs.existsSync(cmdDirOf(dataDir, SYM))).toBe(true);
    await killAndReap(child);
    const engine = await open(dataDir);
    expect(lockOf(dataDir).pid).toBe(process.pid);
    await engine.close();
  });

  it('takes over a lock whose process is gone, and one written by an earlier process with this pid', async () => {
    const dataDir = tmpDir();
    const stale = await staleLock();
    fs.writeFileSync(path.join(dataDir, 'LOCK'), JSON.stringify(stale));
    const a = await open(dataDir);
    expect(lockOf(dataDir)).toMatchObject({ pid: process.pid });
    await a.close();

    fs.writeFileSync(path.join(dataDir, 'LOCK'), JSON.stringify({ ...stale, pid: process.pid }));
    const b = await open(dataDir);
    expect(lockOf(dataDir).since).not.toBe(stale.since);
    await b.close();
  });

  it('refuses a lock it cannot check: another host, or an unreadable file written a moment ago (an old one is taken over)', async () => {
    const dataDir = tmpDir();
    const lock = path.join(dataDir, 'LOCK');
    fs.writeFileSync(lock, JSON.stringify({ pid: 1, host: `${os.hostname()}-elsewhere`, since: '2026-01-01T00:00:00.000Z' }));
    expect((await lockedError(open(dataDir))).message).toContain('another host');
    expect(fs.existsSync(lock)).toBe(true);

    fs.writeFileSync(lock, '');
    expect((await lockedError(open(dataDir))).message).toContain('being written');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, old, old);
    const engine = await open(dataDir);
    expect(lockOf(dataDir).pid).toBe(process.pid);
    await engine.close();
  });

  it('a process killed at any moment while taking or releasing the lock leaves no lock that blocks the next engine', async () => {
    const dataDir = tmpDir();
    const lockModule = pathToFileURL(path.join(PACKAGE_DIR, 'dist/data-lock.js')).href;
    // Takes and releases the lock as fast as it can, so that a kill lands inside acquire() often.
    const script = `const { DataDirLock } = await import(${JSON.stringify(lockModule)});
process.stdout.write('ready\\n');
for (;;) (await DataDirLock.acquire(${JSON.stringify(dataDir)})).release();`;
    for (let trial = 0; trial < 20; trial++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout?.once('data', () => {
          resolve();
        });
        child.once('exit', (code) => {
          reject(new Error(`the child exited (${String(code)}) before taking the lock`));
        });
      });
      await new Promise((r) => setTimeout(r, 2 + ((trial * 7) % 23)));
      await killAndReap(child);
      const engine = await open(dataDir);
      expect(lockOf(dataDir).pid).toBe(process.pid);
      await engine.close();
      // The killed process's temporary file, if any, is gone once another engine has taken the lock.
      expect(fs.readdirSync(dataDir).filter((f) => f.startsWith('LOCK'))).toEqual([]);
    }
  });

  it('a temporary lock file of a process killed while taking the lock neither blocks nor stays', async () => {
    const dataDir = tmpDir();
    const stale = await staleLock();
    const temp = path.join(dataDir, `LOCK.${String(stale.pid)}.tmp`);
    fs.writeFileSync(temp, JSON.stringify(stale));
    const engine = await open(dataDir);
    expect(fs.existsSync(temp)).toBe(false);
    expect(lockOf(dataDir).pid).toBe(process.pid);
    await engine.close();
  });

  it('a failed open releases the lock', async () => {
    const dataDir = tmpDir();
    const engine = await open(dataDir);
    await engine.submit(limit(SYM, 1, 'buy', 100, 1));
    await engine.submit(limit(SYM, 2, 'buy', 101, 1));
    await engine.close();
    // A damaged first command record, followed by a good one: recovery refuses the log.
    const segment = fs.readdirSync(cmdDirOf(dataDir, SYM)).find((f) => f.endsWith('.wal')) as string;
    const file = path.join(cmdDirOf(dataDir, SYM), segment);
    const bytes = fs.readFileSync(file);
    bytes[12] = (bytes[12] as number) ^ 0xff;
    fs.writeFileSync(file, bytes);
    const err = await open(dataDir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('RECOVERY_FAILED');
    for (let i = 0; i < 50 && fs.existsSync(path.join(dataDir, 'LOCK')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(fs.existsSync(path.join(dataDir, 'LOCK'))).toBe(false);
    // The host guard is released too: opening again meets the damaged log, not the lock.
    const again = await open(dataDir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((again as EngineError).code).toBe('RECOVERY_FAILED');
  });

  it.runIf(process.platform === 'linux')('a live engine of this host keeps the directory even when its lock file is gone or looks stale (the host guard)', async () => {
    const dataDir = tmpDir();
    const child = await holder(dataDir);
    const lock = path.join(dataDir, 'LOCK');
    // Its lock file removed: the moment between a racer's takeover and its exclusive create.
    fs.rmSync(lock);
    expect((await lockedError(open(dataDir))).message).toContain('has not written its lock file yet');
    // Its lock file replaced by one of a process that is gone: a takeover would succeed on the file alone.
    const stale = await staleLock();
    fs.writeFileSync(lock, JSON.stringify(stale));
    expect((await lockedError(open(dataDir))).message).toContain(`process ${String(stale.pid)}`);
    expect(fs.existsSync(lock)).toBe(true);
    await killAndReap(child);
    // The kernel released the guard with its process: the stale file is taken over.
    const engine = await open(dataDir);
    expect(lockOf(dataDir).pid).toBe(process.pid);
    await engine.close();
  });

  it.runIf(process.platform === 'linux')(
    'takes over a lock whose holder held the host guard it now gets, even when the pid belongs to a live unrelated process (a reboot)',
    async () => {
      const dataDir = tmpDir();
      const lock = path.join(dataDir, 'LOCK');
      const ns = fs.readlinkSync('/proc/self/ns/net');
      const a = await open(dataDir);
      expect(lockOf(dataDir).guard).toBe(ns);
      await a.close();
      // An unrelated live process that has the pid the lock names.
      const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      children.push(other);
      const base = { pid: other.pid as number, host: os.hostname(), since: '2026-01-01T00:00:00.000Z' };
      // A holder that held no guard (another platform's engine, an older one): its live pid keeps the lock.
      fs.writeFileSync(lock, JSON.stringify(base));
      expect((await lockedError(open(dataDir))).message).toContain(`process ${String(other.pid)}`);
      // The guard of another network namespace: the guard bound here says nothing of it.
      fs.writeFileSync(lock, JSON.stringify({ ...base, guard: 'net:[1]' }));
      await lockedError(open(dataDir));
      // The guard of this namespace, which this process has just bound: that holder is gone.
      fs.writeFileSync(lock, JSON.stringify({ ...base, guard: ns }));
      const b = await open(dataDir);
      expect(lockOf(dataDir)).toMatchObject({ pid: process.pid, guard: ns });
      await b.close();
      expect(other.exitCode).toBeNull();
    },
  );

  it('of several processes that find the same stale lock at once, exactly one opens the directory', async () => {
    const dataDir = tmpDir();
    fs.writeFileSync(path.join(dataDir, 'LOCK'), JSON.stringify(await staleLock()));
    const engine = pathToFileURL(path.join(PACKAGE_DIR, 'dist/index.js')).href;
    // Each waits for the go file, opens, reports, and holds the directory until killed.
    const go = path.join(tmpDir(), 'go');
    const script = `const { Engine } = await import(${JSON.stringify(engine)});
const fs = await import('node:fs');
process.stdout.write('ready\\n');
while (!fs.existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 1));
try {
  await Engine.open({ dataDir: ${JSON.stringify(dataDir)}, symbols: [{ symbol: 'BTCUSDT' }], durability: 'batch', segmentSize: ${SEGMENT} });
  process.stdout.write('opened\\n');
} catch (err) {
  process.stdout.write((err.code ?? 'error: ' + err.message) + '\\n');
}
setInterval(() => {}, 1000);`;
    const outcomes = Array.from({ length: 6 }, () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      let out = '';
      const ready = new Promise<void>((resolve) => {
        child.stdout?.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready')) resolve();
        });
      });
      const outcome = new Promise<string>((resolve) => {
        child.stdout?.on('data', () => {
          const line = out.split('\n')[1];
          if (line) resolve(line);
        });
        child.once('exit', (code) => {
          resolve(`exited ${String(code)}`);
        });
      });
      return { ready, outcome };
    });
    await Promise.all(outcomes.map((o) => o.ready));
    fs.writeFileSync(go, '');
    const results = await Promise.all(outcomes.map((o) => o.outcome));
    expect(results.filter((r) => r === 'opened')).toHaveLength(1);
    expect(results.filter((r) => r === 'LOCKED')).toHaveLength(5);
  });
});
