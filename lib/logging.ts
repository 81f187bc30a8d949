// Structured logs (pino, JSON lines on stderr) and the access log (JSON or fabio's
// common/combined formats on stdout). The access log is built only when enabled, so it costs
// nothing on the hot path when off.

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

function clfTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => (n < 10 ? `0${n}` : String(n));
  return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Formats one access-log line; `undefined` format means off. */
export function formatAccessLog(format: Exclude<AccessLogFormat, 'off'>, e: AccessLogEntry): string {
  if (format === 'json') {
    return JSON.stringify({
      time: new Date(e.time).toISOString(),
      method: e.method,
      host: e.host,
      path: e.path,
      status: e.status,
      bytes: e.bytes,
      duration_ms: e.durationMs,
      remote: e.remote,
      service: e.service,
      upstream: e.upstream,
      retries: e.retries,
    });
  }
  const common = `${e.remote || '-'} - - [${clfTime(e.time)}] "${e.method} ${e.path} ${e.proto}" ${e.status} ${e.bytes}`;
  if (format === 'common') return common;
  return `${common} "${e.referer || '-'}" "${e.userAgent || '-'}"`;
}

/** An access-log sink writing lines to a stream (buffered by the stream itself). */
export function accessLogSink(
  format: AccessLogFormat,
  out: NodeJS.WritableStream = process.stdout,
): ((e: AccessLogEntry) => void) | undefined {
  if (format === 'off') return undefined;
  return (e) => {
    out.write(`${formatAccessLog(format, e)}\n`);
  };
}
