// Structured logs (pino, JSON lines on stderr) and the access log (JSON or fabio's
// common/combined formats on stdout). The access log is built only when enabled, so it costs
// nothing on the hot path when off.

import { write as writeFile, writeSync } from 'node:fs';
import { pino, type Logger } from 'pino';
import type { AccessLogFormat, LogLevel } from './config/index.ts';
import type { AccessLogEntry } from './proxy/http-proxy.ts';

export type { Logger };

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino({ level, base: { name: 'cairn' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that writes nothing (tests, `routes`/`explain`). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

let clfSecond = -1;
let clfText = '';

/** `23/Nov/2026:19:11:13 +0000`, computed once per second. */
function clfTime(ms: number): string {
  const sec = Math.floor(ms / 1000);
  if (sec === clfSecond) return clfText;
  clfSecond = sec;
  const d = new Date(ms);
  const p = (n: number) => (n < 10 ? `0${n}` : String(n));
  clfText = `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
  return clfText;
}

let isoMs = -1;
let isoText = '';

/** ISO time of `ms`, computed once per millisecond (many requests share one). */
function isoTime(ms: number): string {
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

/** A JSON string literal; plain strings (the usual case) skip JSON.stringify. */
function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** Formats one access-log line (without the newline). */
export function formatAccessLog(format: Exclude<AccessLogFormat, 'off'>, e: AccessLogEntry): string {
  if (format === 'json') {
    // Hand-built: this runs once per request, and JSON.stringify of a 12-field object (or a
    // logger's serialiser) costs more than the rest of the log line together.
    return (
      `{"time":"${isoTime(e.time)}","method":${jsonString(e.method)},"host":${jsonString(e.host)},` +
      `"path":${jsonString(e.path)},"status":${e.status},"bytes":${e.bytes},"duration_ms":${e.durationMs},` +
      `"remote":${jsonString(e.remote)},"service":${jsonString(e.service)},` +
      `"upstream":${jsonString(e.upstream)},"retries":${e.retries}}`
    );
  }
  const common = `${e.remote || '-'} - - [${clfTime(e.time)}] "${e.method} ${e.path} ${e.proto}" ${e.status} ${e.bytes}`;
  if (format === 'common') return common;
  return `${common} "${e.referer || '-'}" "${e.userAgent || '-'}"`;
}

/**
 * An access-log sink: one line per request. Lines for stdout are collected and written in
 * batches of 64 KB or after at most 50 ms (a write(2) per request would cost more than the
 * proxying); `flush()` writes what is left synchronously at shutdown. A given stream (tests)
 * is written to directly.
 */
export interface AccessLog {
  readonly write: (e: AccessLogEntry) => void;
  flush(): void;
}

export function accessLogSink(format: AccessLogFormat, out?: NodeJS.WritableStream): AccessLog | undefined {
  if (format === 'off') return undefined;
  if (out !== undefined) {
    return { write: (e) => void out.write(`${formatAccessLog(format, e)}\n`), flush: () => {} };
  }
  const w = new BatchedWriter(1);
  return { write: (e) => w.write(`${formatAccessLog(format, e)}\n`), flush: () => w.flushSync() };
}

/** Appends lines and writes them to a file descriptor in batches, at most one write in flight. */
export class BatchedWriter {
  private readonly fd: number;
  private lines: string[] = [];
  private size = 0;
  private scheduled = false;
  private writing = false;
  /** Lines dropped because the destination could not keep up (bounded memory). */
  dropped = 0;
  private static readonly maxBuffered = 16 * 1024 * 1024;
  private static readonly batchBytes = 64 * 1024;
  private static readonly maxDelayMs = 50;

  constructor(fd: number) {
    this.fd = fd;
  }

  write(line: string): void {
    if (this.size > BatchedWriter.maxBuffered) {
      this.dropped++;
      return;
    }
    this.lines.push(line);
    this.size += line.length;
    if (this.writing) return;
    if (this.size >= BatchedWriter.batchBytes) {
      this.drain();
    } else if (!this.scheduled) {
      // A quiet proxy still gets its lines out promptly; a busy one writes full batches.
      this.scheduled = true;
      setTimeout(this.drain, BatchedWriter.maxDelayMs).unref();
    }
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    if (this.lines.length === 0 || this.writing) return;
    const text = this.lines.join('');
    this.lines = [];
    this.size = 0;
    this.writing = true;
    writeFile(this.fd, text, () => {
      this.writing = false;
      if (this.size >= BatchedWriter.batchBytes) this.drain();
      else if (this.lines.length > 0 && !this.scheduled) {
        this.scheduled = true;
        setTimeout(this.drain, BatchedWriter.maxDelayMs).unref();
      }
    });
  };

  flushSync(): void {
    if (this.lines.length === 0) return;
    const text = this.lines.join('');
    this.lines = [];
    this.size = 0;
    writeSync(this.fd, text);
  }
}
