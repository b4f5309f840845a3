// Spare segments (made in the background, renamed into place at a roll) belong to the writer that
// made them: a writer of the same log aborted with its spare still being made (a halted engine,
// reopened in the same process) cannot remove the new writer's spare, and a spare that is gone by
// the time of the roll (removed by something else) only means the new segment is created afresh.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WalWriter, type FileIO } from '../src/index.js';
import { expectRecords, layout, noSyncIO, readAll, removeTmpDirs, SEG, SMALL, tmpDir } from './helpers.js';

afterEach(removeTmpDirs);

function spareState(w: WalWriter): string {
  return (w as unknown as { spareState: string }).spareState;
}

/** Waits (polling, bounded: a spare is made on the thread pool, which a loaded machine may delay) for `cond`. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  if (!cond()) throw new Error(`gave up waiting for ${what}`);
}

function spares(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith('.spare-'));
}

describe('spare segments', () => {
  it("a writer aborted while its spare was being made does not remove the spare of the writer that reopened the log", async () => {
    const dir = tmpDir();
    // The first writer's spare is created at once, but its preallocation completes only when the
    // test says so (64 MiB synced per MiB takes a while).
    let release: (() => void) | undefined;
    const slowSpare: FileIO = {
      ...noSyncIO,
      preallocate: (file, size, done) => {
        const fd = fs.openSync(file, 'wx');
        release = () => {
          fs.ftruncateSync(fd, size);
          fs.closeSync(fd);
          done(null);
        };
      },
    };
    const payloads: Buffer[] = [];
    const next = (): Buffer => {
      const b = Buffer.alloc(200, (payloads.length % 250) + 1);
      payloads.push(b);
      return b;
    };
    const w1 = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: slowSpare });
    for (let i = 0; i < 6; i++) w1.append(next());
    w1.flush(); // a quarter of the segment written: the spare is being made
    expect(release, 'the first writer started no spare').toBeDefined();
    // Its owner fails and abandons it (an engine's halt), then reopens the log in the same process.
    w1.abort();

    const w2 = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO });
    for (let i = 0; i < 6; i++) w2.append(next());
    w2.flush();
    await until(() => spareState(w2) === 'ready', "the second writer's spare");
    const mine = spares(dir);
    expect(mine).toHaveLength(1);
    // The first writer's preallocation completes now: it finds itself closed and removes its own spare.
    release?.();
    expect(spares(dir)).toEqual(mine);

    // Fill the segment and roll onto the second writer's spare.
    const before = payloads.length;
    while (payloads.length < before + Math.ceil(SEG / 208) + 2) w2.append(next());
    await w2.sync();
    expect(spares(dir), 'the roll took the spare').not.toContain(mine[0]);
    await w2.close();
    expectRecords(readAll(dir), payloads, layout(payloads));
  });

  it('a spare removed before the roll: the roll creates the segment afresh instead of failing the log', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO });
    const payloads: Buffer[] = [];
    const add = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const b = Buffer.alloc(200, (payloads.length % 250) + 1);
        payloads.push(b);
        w.append(b);
      }
    };
    add(6);
    w.flush();
    await until(() => spareState(w) === 'ready', 'the spare');
    for (const name of spares(dir)) fs.rmSync(path.join(dir, name));
    add(Math.ceil(SEG / 208) + 2);
    await w.sync();
    add(3);
    await w.close();
    expectRecords(readAll(dir), payloads, layout(payloads));
  });
});
