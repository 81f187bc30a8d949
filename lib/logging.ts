// Structured logs (pino, JSON lines on stderr) and the access log (JSON or fabio's
// common/combined formats on stdout). The access log is built only when enabled, so it costs
// nothing on the hot path when off.

import { write as writeFile, writeSync } from 'node:fs';
import { isWorkerProcess } from './workers/role.ts';
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
  // Workers of `--workers N` share stdout with each other: keep their lines whole.
  const w = new BatchedWriter(1, { shared: isWorkerProcess() });
  return { write: (e) => w.write(`${formatAccessLog(format, e)}\n`), flush: () => w.flushSync() };
}

/**
 * Appends lines and writes them to a file descriptor in batches, at most one write in flight.
 *
 * A write may be partial (a full pipe) or fail with EAGAIN (a non-blocking pipe): the rest is
 * written when the descriptor takes it again, never dropped silently. With `--workers N` several
 * processes share the descriptor; writes of at most PIPE_BUF (4 KiB) bytes to a pipe are atomic,
 * so `shared` cuts every batch at line boundaries into such pieces and no two workers' lines mix.
 */
export class BatchedWriter {
  private readonly fd: number;
  private readonly pieceBytes: number;
  private lines: string[] = [];
  private size = 0;
  private scheduled = false;
  private writing = false;
  /** What is being written now: pieces, each written whole before the next. */
  private pieces: Buffer[] = [];
  /** Lines dropped because the destination could not keep up (bounded memory). */
  dropped = 0;
  private static readonly maxBuffered = 16 * 1024 * 1024;
  private static readonly batchBytes = 64 * 1024;
  private static readonly maxDelayMs = 50;
  private static readonly pipeBuf = 4096;

  constructor(fd: number, opts: { readonly shared?: boolean } = {}) {
    this.fd = fd;
    this.pieceBytes = opts.shared === true ? BatchedWriter.pipeBuf : Infinity;
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

  /** The buffered lines as pieces: one piece, or line-aligned pieces of at most pieceBytes. */
  private takePieces(): Buffer[] {
    const lines = this.lines;
    this.lines = [];
    this.size = 0;
    if (this.pieceBytes === Infinity) return [Buffer.from(lines.join(''))];
    const out: Buffer[] = [];
    let group: string[] = [];
    let groupBytes = 0;
    for (const line of lines) {
      const n = Buffer.byteLength(line);
      if (groupBytes + n > this.pieceBytes && group.length > 0) {
        out.push(Buffer.from(group.join('')));
        group = [];
        groupBytes = 0;
      }
      group.push(line);
      groupBytes += n;
    }
    if (group.length > 0) out.push(Buffer.from(group.join('')));
    return out;
  }

  private readonly drain = (): void => {
    this.scheduled = false;
    if (this.lines.length === 0 || this.writing) return;
    this.pieces = this.takePieces();
    this.writing = true;
    this.writeNext();
  };

  private writeNext(): void {
    const piece = this.pieces[0];
    if (piece === undefined) {
      this.writing = false;
      if (this.size >= BatchedWriter.batchBytes) this.drain();
      else if (this.lines.length > 0 && !this.scheduled) {
        this.scheduled = true;
        setTimeout(this.drain, BatchedWriter.maxDelayMs).unref();
      }
      return;
    }
    writeFile(this.fd, piece, 0, piece.length, null, (err, written) => {
      if (err !== null) {
        if (err.code === 'EAGAIN') {
          setTimeout(() => this.writeNext(), 10).unref();
          return;
        }
        // The destination is gone (EPIPE, EBADF): count what is lost and carry on.
        this.dropped += this.pieces.length;
        this.pieces = [];
      } else if (written < piece.length) {
        this.pieces[0] = piece.subarray(written);
      } else {
        this.pieces.shift();
      }
      this.writeNext();
    });
  }

  flushSync(): void {
    // A piece being written asynchronously right now is left to that write.
    const inFlight = this.writing ? this.pieces.slice(0, 1) : [];
    const pending = [...this.pieces.slice(inFlight.length), ...this.takePieces()];
    this.pieces = inFlight;
    for (const piece of pending) {
      let off = 0;
      while (off < piece.length) {
        try {
          off += writeSync(this.fd, piece, off, piece.length - off);
        } catch {
          return; // shutting down: nothing better to do than stop
        }
      }
    }
  }
}
