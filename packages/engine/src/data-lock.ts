// One engine per data directory. A second process opening the same logs would append over the
// first one's records, and its recovery could cut the first one's live tail as torn. Opening takes
// two locks:
// - on Linux, a host guard: a listening socket in the abstract namespace named after the
//   directory's real path. Binding it is atomic and the kernel releases it when its process dies
//   (even by SIGKILL), so of the engines of one host that race for a directory (two that find the
//   same stale lock file, say) exactly one gets past it;
// - `<dataDir>/LOCK`, holding the owner's pid, host and start time, created whole (a synced
//   temporary file hard-linked into place, so that no crash leaves an empty lock). It names the
//   holder in errors, and covers what the guard cannot see: another host on a shared filesystem,
//   another network namespace, another platform.
// Closing releases both. A lock file left by a process that is gone (a crash) is taken over. A lock
// file whose holder held the guard of this host's network namespace is taken over by whoever holds
// that guard now, even if its pid is alive: the pid was reused by an unrelated process (after a
// reboot, say), since a live holder would still hold the guard. What cannot be checked is refused:
// a lock from another host, or one being written.
//
// Limits: without the guard (not Linux, or engines in different network namespaces), a crashed
// owner's pid reused by an unrelated process keeps the lock (the error says how to remove it), and
// two processes that find the same stale lock file at the same instant may both take it over (the
// window is one unlink and one exclusive create).

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EngineError } from './errors.js';

export const LOCK_FILE = 'LOCK';

interface Holder {
  pid: number;
  host: string;
  since: string;
  /** The network namespace (`net:[inode]`) whose host guard the holder held, if it held one. */
  guard?: string;
}

/**
 * Data directories locked by engines of this process (a lock file with this pid but not listed
 * here is from an earlier process). Kept on the global object, so that two copies of this package
 * loaded in one process share it.
 */
const HELD = Symbol.for('gx3.engine.heldDataDirs');
const heldHere: Set<string> = ((globalThis as Record<symbol, unknown>)[HELD] as Set<string> | undefined) ?? new Set<string>();
(globalThis as Record<symbol, unknown>)[HELD] = heldHere;

/** How old an unreadable lock file must be to be taken as left over (a younger one may be being written). */
const UNREADABLE_GRACE_MS = 10_000;

export class DataDirLock {
  private released = false;

  private constructor(
    readonly file: string,
    private readonly key: string,
    private readonly content: string,
    private readonly guard: net.Server | undefined,
  ) {}

  /** Takes the lock of `dataDir` (which must exist); rejects with EngineError LOCKED if another live engine holds it. */
  static async acquire(dataDir: string): Promise<DataDirLock> {
    // The real path: the same directory reached through a symbolic link is the same lock.
    let key: string;
    try {
      key = fs.realpathSync(dataDir);
    } catch (err) {
      throw new EngineError('INVALID_CONFIG', `cannot resolve the data directory ${dataDir}: ${(err as Error).message}`, { cause: err, option: 'dataDir' });
    }
    const file = path.join(key, LOCK_FILE);
    if (heldHere.has(key)) throw locked(file, `an engine of this process (pid ${process.pid})`);
    heldHere.add(key); // before waiting for the guard: a second open in this process is refused meanwhile
    let guard: net.Server | undefined;
    try {
      guard = await hostGuard(key, file);
      const guardNs = guard === undefined ? undefined : networkNamespace();
      const holder: Holder = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), ...(guardNs === undefined ? {} : { guard: guardNs }) };
      const content = `${JSON.stringify(holder)}\n`;
      for (let attempt = 0; attempt < 3; attempt++) {
        if (create(file, content)) {
          removeStrayTemps(key);
          return new DataDirLock(file, key, content, guard);
        }
        const why = liveHolder(file, guardNs);
        if (why !== undefined) throw locked(file, why);
        fs.rmSync(file, { force: true }); // left over by a process that is gone
      }
      throw locked(file, 'other processes keep taking it');
    } catch (err) {
      heldHere.delete(key);
      guard?.close();
      throw err;
    }
  }

  /** Removes the lock file, if it is still this one's. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      if (fs.readFileSync(this.file, 'utf8') === this.content) fs.rmSync(this.file);
    } catch {
      // already gone
    }
    // The guard last: until the file is gone, no other engine of this host may start taking it over.
    this.guard?.close();
    heldHere.delete(this.key);
  }
}

/** The abstract socket name of a directory's host guard (79 bytes; the limit is 107). */
function guardName(key: string): string {
  return `\0gx3-data-dir-${createHash('sha256').update(key).digest('hex')}`;
}

/**
 * Binds the host guard of the directory whose real path is `key`: resolves with its server, or
 * undefined where abstract sockets do not exist (not Linux, or a sandbox that refuses them: the
 * lock file alone then); rejects with LOCKED if another process of this host holds it.
 */
function hostGuard(key: string, file: string): Promise<net.Server | undefined> {
  if (process.platform !== 'linux') return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    // Nothing is served: a connection (someone probing) is closed at once.
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') reject(locked(file, describeHolder(file)));
      else resolve(undefined);
    });
    server.listen({ path: guardName(key) }, () => {
      server.removeAllListeners('error');
      server.on('error', () => {
        // An accept error after listening: the guard stays bound, which is all it is for.
      });
      server.unref();
      resolve(server);
    });
  });
}

/** Who holds the lock, from its file, for a refusal by the host guard. */
function describeHolder(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return 'another process of this host, which has not written its lock file yet';
  }
  const holder = parseHolder(text);
  if (holder === undefined) return 'another process of this host (its lock file is being written)';
  return `process ${holder.pid} on ${holder.host}, since ${holder.since}`;
}

/**
 * Creates `file` holding `content`, or returns false if it exists. The content is written and synced
 * to a temporary file first, which is then hard-linked as the lock: the lock appears whole or not
 * at all, so a process killed while taking it leaves no empty lock behind (only the temporary file,
 * which the next owner removes). Where hard links are not supported, the lock is created
 * exclusively and then written, and an unreadable lock younger than UNREADABLE_GRACE_MS is taken
 * as being written.
 */
function create(file: string, content: string): boolean {
  const temp = tempOf(file, process.pid);
  try {
    writeSynced(temp, content, 'w');
    try {
      fs.linkSync(temp, file);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    }
    try {
      writeSynced(file, content, 'wx');
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  } catch (err) {
    throw new EngineError('INVALID_CONFIG', `cannot create the lock ${file}: ${(err as Error).message}`, { cause: err, option: 'dataDir' });
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

function writeSynced(file: string, content: string, flags: 'w' | 'wx'): void {
  const fd = fs.openSync(file, flags);
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function tempOf(file: string, pid: number): string {
  return `${file}.${String(pid)}.tmp`;
}

const TEMP_NAME = new RegExp(`^${LOCK_FILE}\\.(\\d+)\\.tmp$`);

/** Removes the temporary lock files of processes that are gone (killed while taking the lock). */
function removeStrayTemps(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !alive(pid)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/**
 * The network namespace of this process (`net:[inode]`), whose abstract sockets the host guard
 * lives in; undefined where it cannot be read.
 */
function networkNamespace(): string | undefined {
  try {
    return fs.readlinkSync('/proc/self/ns/net');
  } catch {
    return undefined;
  }
}

/**
 * Why the lock in `file` is held by a live engine, or undefined if it is left over. `guardNs`: the
 * network namespace whose host guard this process holds now, if it holds one.
 */
function liveHolder(file: string, guardNs: string | undefined): string | undefined {
  let text: string;
  let mtime: number;
  try {
    text = fs.readFileSync(file, 'utf8');
    mtime = fs.statSync(file).mtimeMs;
  } catch {
    return undefined; // removed meanwhile: try again
  }
  const holder = parseHolder(text);
  if (holder === undefined) {
    return Date.now() - mtime < UNREADABLE_GRACE_MS ? 'its lock file is being written (or is not a gx3 lock)' : undefined;
  }
  const who = `process ${holder.pid} on ${holder.host}, since ${holder.since}`;
  if (holder.host !== os.hostname()) return `${who} (another host: it cannot be checked from here)`;
  // This pid, but no engine of this process holds it: the file is from an earlier process that had
  // the same pid (a restarted container).
  if (holder.pid === process.pid) return undefined;
  // The holder held the guard this process holds now: it is gone, whatever process has its pid now
  // (a live holder would still hold the guard, and binding it here would have failed). Namespace
  // ids are unique among the live namespaces of a host, and the host was checked above.
  if (guardNs !== undefined && holder.guard === guardNs) return undefined;
  return alive(holder.pid) ? who : undefined;
}

function parseHolder(text: string): Holder | undefined {
  try {
    const v = JSON.parse(text) as Partial<Holder> | null;
    if (v === null || typeof v !== 'object') return undefined;
    if (!Number.isSafeInteger(v.pid) || typeof v.host !== 'string' || typeof v.since !== 'string') return undefined;
    if (v.guard !== undefined && typeof v.guard !== 'string') return undefined;
    return { pid: v.pid as number, host: v.host, since: v.since, ...(v.guard === undefined ? {} : { guard: v.guard }) };
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function locked(file: string, why: string): EngineError {
  return new EngineError('LOCKED', `the data directory is in use: ${file} is held by ${why}; stop that engine first, or remove ${file} if no engine uses the directory`);
}
