// CPU time of a whole process tree, read from /proc (Linux only).
//
// A proxy may be several processes (nginx's master + worker, Node's cluster workers) and each of
// them several threads (libuv's pool, V8's GC helpers). /proc/<pid>/stat's utime + stime cover
// all threads of one process; children still alive are found by walking /proc for their parent
// pid (the kernel's /proc/<pid>/task/*/children is not always compiled in), and children that
// exited and were reaped are in their parent's cutime + cstime. Summing utime + stime + cutime +
// cstime over the live tree therefore counts every CPU-second exactly once.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second (USER_HZ): asked once; 100 on every mainstream Linux ABI. */
const ticksPerSecond = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  /** utime + stime + cutime + cstime, in ticks. */
  readonly ticks: number;
}

/** Parses one /proc/<pid>/stat line. The command name may hold spaces and parentheses. */
export function parseProcStat(line: string): ProcStat | undefined {
  const open = line.indexOf(' (');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const pid = Number(line.slice(0, open));
  // Fields after the name start at field 3 (state); field n is rest[n - 3].
  const rest = line.slice(close + 2).split(' ');
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const cutime = Number(rest[13]);
  const cstime = Number(rest[14]);
  if (![pid, ppid, utime, stime, cutime, cstime].every(Number.isFinite)) return undefined;
  return { pid, ppid, ticks: utime + stime + cutime + cstime };
}

function readStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined; // exited between readdir and read
  }
}

/** Every live process, keyed by pid. */
function allProcesses(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const s = readStat(Number(name));
    if (s !== undefined) out.set(s.pid, s);
  }
  return out;
}

/** Pids of `rootPid` and all its live descendants. */
export function processTree(rootPid: number): number[] {
  return treeOf(rootPid, allProcesses()).map((s) => s.pid);
}

function treeOf(rootPid: number, procs: Map<number, ProcStat>): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const s of procs.values()) {
    const list = children.get(s.ppid);
    if (list === undefined) children.set(s.ppid, [s]);
    else list.push(s);
  }
  const root = procs.get(rootPid);
  if (root === undefined) return [];
  const out: ProcStat[] = [];
  const queue: ProcStat[] = [root];
  while (queue.length > 0) {
    const s = queue.pop() as ProcStat;
    out.push(s);
    for (const child of children.get(s.pid) ?? []) queue.push(child);
  }
  return out;
}

/** CPU-seconds used so far by `rootPid`'s whole process tree (all threads, reaped children too). */
export function processTreeCpuSeconds(rootPid: number): number {
  let ticks = 0;
  for (const s of treeOf(rootPid, allProcesses())) ticks += s.ticks;
  return ticks / ticksPerSecond;
}
