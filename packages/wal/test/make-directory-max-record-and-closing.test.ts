// Review of the last hour's WAL changes: makeDirectory (replacing fs.mkdirSync(dir, { recursive: true })
// in the engine, the server and the bench), verify/repair/open with a maxRecordSize below the log's
// records (INVALID_OPTIONS), and commit() of a reservation that close() dropped (CLOSED).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { makeDirectory, repairLog, verifyLog, WalError, WalWriter } from '../src/index.js';
import { appendAt, noSyncIO, readAll, removeTmpDirs, snapshot, expectSameSnapshot, tmpDir } from './helpers.js';

afterAll(removeTmpDirs);

const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));

/** The error `f` throws (undefined if it throws nothing). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** A healthy log of three records: 100 bytes, `big` bytes, 100 bytes (durability none, closed). */
async function mixedLog(big: number): Promise<string> {
  const dir = tmpDir();
  const w = WalWriter.open(dir, { durability: 'none', maxRecordSize: 1 << 16 });
  for (const [i, n] of [100, big, 100].entries()) appendAt(w, Buffer.alloc(n, i + 1));
  await w.close();
  return dir;
}

// -------------------------------------------------------------------------------------------------
// Bugs

describe('makeDirectory is mkdir -p for every path (empty, .. after a symbolic link)', () => {
  it('an empty path is refused (ENOENT, as mkdir -p and fs.mkdirSync(recursive) say), not taken as the current directory', () => {
    // Before makeDirectory, Engine.open({ dataDir: '' }) was INVALID_CONFIG (mkdirSync: ENOENT);
    // path.resolve('') is the current directory, so it now "succeeds" and the engine writes its LOCK
    // and symbol directories into the process's working directory.
    const err = thrown(() => {
      makeDirectory('');
    });
    expect(err, 'makeDirectory("") returned without error').toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('a path with .. after a symbolic link creates the directory the system resolves it to (not a lexically normalized one)', () => {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'real', 'inner'), { recursive: true });
    fs.symlinkSync(path.join(root, 'real', 'inner'), path.join(root, 'deep'));
    // Built by hand: path.join would normalize the .. away.
    const dir = `${root}/deep/../made`;
    makeDirectory(dir);
    // The kernel resolves deep/.. to real/: that is where mkdir -p (and fs.mkdirSync) create it.
    expect(fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory(), `${dir} does not exist after makeDirectory returned`).toBe(true);
    expect(fs.existsSync(path.join(root, 'real', 'made'))).toBe(true);
    // And nothing is created where the path does not lead.
    expect(fs.existsSync(path.join(root, 'made'))).toBe(false);
  });
});

describe('a maxRecordSize below a record in the middle of a healthy log is INVALID_OPTIONS, not corruption', () => {
  // README: "opening, verify or repair with a maxRecordSize below the log's own records:
  // INVALID_OPTIONS (a record with a valid CRC follows where the scan stopped): nothing is cut".
  // The fix of d67b773 checks only a scan that ends 'torn' (the long record last); with a long record
  // followed by short ones the scan says 'corrupt' and the healthy log is reported damaged.
  it('verifyLog: INVALID_OPTIONS, not status corrupt', async () => {
    const dir = await mixedLog(5000);
    expect(verifyLog(dir, { maxRecordSize: 1 << 16 })).toMatchObject({ status: 'ok', records: 3 });
    let result: unknown;
    const err = thrown(() => {
      result = verifyLog(dir, { maxRecordSize: 1000 });
    });
    expect(err, `verifyLog returned ${JSON.stringify(result)}`).toBeInstanceOf(WalError);
    expect((err as WalError).code).toBe('INVALID_OPTIONS');
  });

  it('WalWriter.open and repairLog: INVALID_OPTIONS (not CORRUPT), and the log is left as it was', async () => {
    const dir = await mixedLog(5000);
    const before = snapshot(dir);
    const open = thrown(() => { WalWriter.open(dir, { durability: 'none', maxRecordSize: 1000 }).closeSync(); });
    const repair = thrown(() => repairLog(dir, { maxRecordSize: 1000 }));
    expectSameSnapshot(snapshot(dir), before);
    expect(readAll(dir, { maxRecordSize: 1 << 16 }).map((r) => r.payload.length)).toEqual([100, 5000, 100]);
    expect({ open: (open as WalError | undefined)?.code, repair: (repair as WalError | undefined)?.code }).toEqual({ open: 'INVALID_OPTIONS', repair: 'INVALID_OPTIONS' });
  });
});

describe('commit() of a reservation dropped by a close() still under way is CLOSED', () => {
  it('is CLOSED (README: a use once close() has begun is CLOSED), not INVALID_OPTIONS "commit() without reserve()"', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { durability: 'batch', io: noSyncIO });
    appendAt(w, Buffer.from('kept'));
    const at = w.reserve(16);
    w.buffer.write('dropped', at);
    const closing = w.close(); // awaits its sync: the writer is not closed yet, but the reservation is gone
    const err = thrown(() => {
      w.commit(7);
    });
    await closing;
    expect(err).toBeInstanceOf(WalError);
    expect((err as WalError).code, (err as Error).message).toBe('CLOSED');
    expect(readAll(dir).map((r) => r.payload.toString())).toEqual(['kept']);
  });
});

// -------------------------------------------------------------------------------------------------
// Guards (correct today)

describe('makeDirectory as mkdir -p', () => {
  it('follows a symbolic link to a directory, at the end of the path and in its middle', () => {
    const root = tmpDir();
    fs.mkdirSync(path.join(root, 'real'));
    fs.symlinkSync(path.join(root, 'real'), path.join(root, 'link'));
    makeDirectory(path.join(root, 'link'));
    makeDirectory(path.join(root, 'link', 'a', 'b'));
    expect(fs.statSync(path.join(root, 'real', 'a', 'b')).isDirectory()).toBe(true);
    expect(fs.lstatSync(path.join(root, 'link')).isSymbolicLink()).toBe(true);
  });

  it('a relative path is taken from the working directory; a trailing slash and repeated slashes are fine', () => {
    const root = tmpDir();
    const rel = path.relative(process.cwd(), root);
    makeDirectory(`${rel}/x//y/`);
    expect(fs.statSync(path.join(root, 'x', 'y')).isDirectory()).toBe(true);
  });

  it('a dangling symbolic link or a link to a file in the way is a system error with a code, and nothing is created behind it', () => {
    const root = tmpDir();
    fs.symlinkSync(path.join(root, 'nowhere'), path.join(root, 'dangling'));
    fs.writeFileSync(path.join(root, 'file'), 'x');
    fs.symlinkSync(path.join(root, 'file'), path.join(root, 'filelink'));
    for (const p of ['dangling', 'dangling/sub', 'filelink', 'filelink/sub']) {
      const err = thrown(() => {
        makeDirectory(path.join(root, p));
      });
      expect(err, p).toBeInstanceOf(Error);
      expect((err as NodeJS.ErrnoException).code, p).toMatch(/^E[A-Z]+$/);
    }
    expect(fs.existsSync(path.join(root, 'nowhere'))).toBe(false);
    expect(fs.readFileSync(path.join(root, 'file'), 'utf8')).toBe('x');
  });

  // Other processes creating the same tree at once: each of them sees EEXIST somewhere and must take
  // an existing directory as made.
  it.skipIf(!fs.existsSync(DIST))('processes racing to create the same deep tree all succeed', async () => {
    const root = tmpDir();
    const dir = path.join(root, ...Array.from({ length: 40 }, (_, i) => `d${i}`));
    const go = path.join(root, 'go');
    const script = `import fs from 'node:fs'; import { makeDirectory } from ${JSON.stringify(pathToFileURL(DIST).href)};
while (!fs.existsSync(${JSON.stringify(go)})) {}
try { makeDirectory(${JSON.stringify(dir)}); console.log('ok'); } catch (err) { console.log(err.code ?? err.message); }`;
    const children = Array.from({ length: 4 }, () => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'], timeout: 20_000 });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      return new Promise<string>((resolve) => child.on('close', () => { resolve(out.trim()); }));
    });
    await new Promise((r) => setTimeout(r, 300)); // let them start and spin on the go file
    fs.writeFileSync(go, '');
    expect(await Promise.all(children)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(fs.statSync(dir).isDirectory()).toBe(true);
  });
});

describe('a maxRecordSize below the log records, the long record last', () => {
  it('verifyLog is INVALID_OPTIONS; with a large enough maxRecordSize the same log verifies ok', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { durability: 'none', maxRecordSize: 1 << 16 });
    appendAt(w, Buffer.alloc(100, 1));
    appendAt(w, Buffer.alloc(5000, 2));
    await w.close();
    expect((thrown(() => verifyLog(dir, { maxRecordSize: 1000 })) as WalError | undefined)?.code).toBe('INVALID_OPTIONS');
    expect(verifyLog(dir, { maxRecordSize: 5000 })).toMatchObject({ status: 'ok', records: 2 });
  });
});

describe('commit() after the writer is closed', () => {
  it('closeSync() and a close() that has resolved: CLOSED; a commit() without any reserve() on an open writer: INVALID_OPTIONS', async () => {
    const a = WalWriter.open(tmpDir(), { durability: 'batch', io: noSyncIO });
    expect((thrown(() => { a.commit(1); }) as WalError | undefined)?.code).toBe('INVALID_OPTIONS');
    a.reserve(8);
    a.closeSync();
    expect((thrown(() => { a.commit(1); }) as WalError | undefined)?.code).toBe('CLOSED');
    const b = WalWriter.open(tmpDir(), { durability: 'batch', io: noSyncIO });
    b.reserve(8);
    await b.close();
    expect((thrown(() => { b.commit(1); }) as WalError | undefined)?.code).toBe('CLOSED');
  });
});
