// Reading Node's profiles: the top functions by self time of a `.cpuprofile` (--cpu-prof) and the
// top allocation sites of a `.heapprofile` (--heap-prof, sampled), as `go tool pprof -top` prints.

import fs from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

function where(f: CallFrame): string {
  const file = f.url === '' ? '' : ` ${f.url.replace(/^file:\/\//, '').split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
  return `${f.functionName === '' ? '(anonymous)' : f.functionName}${file}`;
}

export interface TopRow {
  name: string;
  /** Milliseconds (CPU) or bytes (heap). */
  self: number;
  share: number;
}

export function topCpu(file: string, n: number): { rows: TopRow[]; total: number } {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as { nodes: { id: number; callFrame: CallFrame }[]; samples: number[]; timeDeltas: number[] };
  const frame = new Map(p.nodes.map((x) => [x.id, x.callFrame]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const f = frame.get(p.samples[i] as number);
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    if (f === undefined) continue;
    const k = where(f);
    self.set(k, (self.get(k) ?? 0) + dt);
    total += dt;
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, ms]) => ({ name, self: ms, share: total === 0 ? 0 : ms / total }));
  return { rows, total };
}

interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

export function topHeap(file: string, n: number): { rows: TopRow[]; total: number } {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as { head: HeapNode };
  const self = new Map<string, number>();
  let total = 0;
  const visit = (node: HeapNode): void => {
    if (node.selfSize > 0) {
      const k = where(node.callFrame);
      self.set(k, (self.get(k) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const c of node.children) visit(c);
  };
  visit(p.head);
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, bytes]) => ({ name, self: bytes, share: total === 0 ? 0 : bytes / total }));
  return { rows, total };
}

export function formatTop(kind: 'cpu' | 'heap', top: { rows: TopRow[]; total: number }): string {
  const unit = kind === 'cpu' ? 'ms' : 'KiB';
  const v = (x: number): string => (kind === 'cpu' ? x.toFixed(1) : (x / 1024).toFixed(0));
  const lines = [`${kind === 'cpu' ? 'self time' : 'allocation sites (sampled by --heap-prof)'}: total ${v(top.total)} ${unit}`, `${'self'.padStart(10)} ${'share'.padStart(6)}  function`];
  for (const r of top.rows) lines.push(`${`${v(r.self)} ${unit}`.padStart(10)} ${`${(r.share * 100).toFixed(1)}%`.padStart(6)}  ${r.name}`);
  return lines.join('\n') + '\n';
}
