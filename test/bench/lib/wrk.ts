// Running wrk and reading its report.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { track, untrack } from './processes.ts';

export interface WrkResult {
  readonly requests: number;
  readonly durationS: number;
  readonly requestsPerSec: number;
  /** Latency percentiles in milliseconds (from `--latency`); NaN when wrk did not print them. */
  readonly p50Ms: number;
  readonly p75Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  /** From the done() hook runWrk adds (wrk's own report stops at 99 %); NaN when absent. */
  readonly p999Ms: number;
  /** wrk's "Non-2xx or 3xx responses" (0 when the line is absent). */
  readonly non2xx: number;
  /** Sum of wrk's socket errors (connect, read, write, timeout); 0 when the line is absent. */
  readonly socketErrors: number;
  readonly socketErrorsText: string;
}

const timeUnitsMs: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `1.23ms` / `456.00us` / `2.01s` -> milliseconds. */
export function parseWrkDuration(text: string): number {
  const m = /^([0-9.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (m === null) return Number.NaN;
  return Number(m[1]) * (timeUnitsMs[m[2] as string] as number);
}

function percentile(out: string, p: string): number {
  const m = new RegExp(`^\\s+${p}%\\s+(\\S+)\\s*$`, 'm').exec(out);
  return m === null ? Number.NaN : parseWrkDuration(m[1] as string);
}

/** The `p99.9 <microseconds>` line the done() hook prints, in milliseconds. */
function tailPercentile(out: string): number {
  const m = /^p99\.9 ([0-9.]+)$/m.exec(out);
  return m === null ? Number.NaN : Number(m[1]) / 1000;
}

/**
 * Prints the 99.9th percentile once, at the end of the run (no per-request Lua, so the load is
 * the same as without it).
 */
const doneHook = `
done = function(summary, latency, requests)
  io.write(string.format("p99.9 %.1f\\n", latency:percentile(99.9)))
end
`;

let hookDir: string | undefined;

/**
 * `script` (or nothing) followed by the done() hook, as a file for `wrk -s`. A script given here
 * must not define done() itself (the hook's would replace it).
 */
function scriptWithHook(script: string | undefined): string {
  if (hookDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-wrk-'));
    hookDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const base = script === undefined ? '' : readFileSync(script, 'utf8');
  const file = join(hookDir, `${script === undefined ? 'plain' : script.replace(/[^A-Za-z0-9]/g, '_')}.lua`);
  writeFileSync(file, `${base}\n${doneHook}`);
  return file;
}

/** Reads wrk 4's text report; throws when the summary lines are missing (wrk failed). */
export function parseWrkOutput(out: string): WrkResult {
  const total = /^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h),/m.exec(out);
  const rps = /^Requests\/sec:\s+([0-9.]+)/m.exec(out);
  if (total === null || rps === null) throw new Error(`unexpected wrk output:\n${out}`);
  const non2xx = /^\s*Non-2xx or 3xx responses:\s+(\d+)/m.exec(out);
  const sock = /^\s*Socket errors:\s+connect (\d+), read (\d+), write (\d+), timeout (\d+)/m.exec(out);
  const socketErrors = sock === null ? 0 : [1, 2, 3, 4].reduce((n, i) => n + Number(sock[i]), 0);
  return {
    requests: Number(total[1]),
    durationS: parseWrkDuration(`${total[2]}${total[3]}`) / 1000,
    requestsPerSec: Number(rps[1]),
    p50Ms: percentile(out, '50'),
    p75Ms: percentile(out, '75'),
    p90Ms: percentile(out, '90'),
    p99Ms: percentile(out, '99'),
    p999Ms: tailPercentile(out),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    socketErrors,
    socketErrorsText: sock === null ? '' : (sock[0] as string).trim(),
  };
}

export interface WrkOptions {
  readonly url: string;
  readonly seconds: number;
  readonly connections: number;
  readonly threads: number;
  /** CPU list for taskset, e.g. `0`. */
  readonly cpu: string;
  /** A wrk Lua script (`-s`), e.g. to vary the request per connection. */
  readonly script?: string;
}

/** Runs wrk pinned to `cpu` and resolves to its report; killed if it overruns by 30 s. */
export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    '-c',
    o.cpu,
    'wrk',
    `-t${o.threads}`,
    `-c${o.connections}`,
    `-d${o.seconds}s`,
    '--latency',
    '-s',
    scriptWithHook(o.script),
    o.url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    track(child, 'wrk');
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(
      () => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL');
        } catch {
          /* already gone */
        }
      },
      (o.seconds + 30) * 1000,
    );
    child.once('error', (e) => {
      clearTimeout(timer);
      untrack(child);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      untrack(child);
      if (code !== 0) {
        reject(
          new Error(
            `wrk ${args.slice(2).join(' ')} exited with ${code ?? signal}: ${err.trim() || out.trim()}`,
          ),
        );
        return;
      }
      try {
        resolve(parseWrkOutput(out));
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}
