// Starts a real CairnServer in-process for integration tests: a temporary file registry, the proxy
// on 127.0.0.1:0, admin on 127.0.0.1:0, a silent logger. Clients talk to it over real sockets.

import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { loadConfig } from '../../../lib/config/index.ts';
import { silentLogger } from '../../../lib/logging.ts';
import { CairnServer } from '../../../lib/server.ts';

export interface RegistryInstance {
  readonly id?: string;
  readonly address?: string;
  readonly port: number;
  readonly tags?: readonly string[];
  readonly weight?: number;
  readonly status?: string;
}

export interface RegistryService {
  readonly name: string;
  readonly instances: readonly RegistryInstance[];
}

/** The file registry's content: services with tagged instances, and/or manual route commands. */
export interface RegistryContent {
  readonly services?: readonly RegistryService[];
  readonly routes?: string;
}

export interface CairnOptions {
  /** Extra command-line arguments (e.g. `--noroute-status 410`, `--response-timeout 300ms`). */
  readonly args?: readonly string[];
  /** Where the access log goes (with `--access-log`); default stdout. */
  readonly accessLogOut?: NodeJS.WritableStream;
}

export interface Response {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  readonly text: string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer | Readable;
}

export interface Cairn {
  readonly server: CairnServer;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly file: string;
  /** Keep-alive client for this Cairn (closed by stop()). */
  readonly client: Agent;
  /** Sends one request through Cairn and reads the whole response. */
  fetch(path: string, opts?: RequestOptions): Promise<Response>;
  /** Rewrites the registry file and waits until the new table is live. */
  update(content: RegistryContent): Promise<void>;
  /** Rewrites the registry file with any text (broken edits); does not wait. */
  writeRaw(text: string): Promise<void>;
  /** The file registry's reported error ('' when it is fine). */
  registryError(): string;
  /** Graceful CairnServer.stop() (once; later calls wait for the first). */
  stopServer(waitMs?: number): Promise<void>;
  /** Closes the test client, stops the server (if not yet), removes the temp directory. */
  stop(waitMs?: number): Promise<void>;
}

export function registryYaml(content: RegistryContent): string {
  return stringify(content);
}

export async function startCairn(content: RegistryContent, opts: CairnOptions = {}): Promise<Cairn> {
  const dir = await mkdtemp(join(tmpdir(), 'cairn-it-'));
  const file = join(dir, 'routes.yaml');
  await writeFile(file, registryYaml(content));
  const loaded = loadConfig(
    [
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--registry',
      `file:${file}`,
      '--log-level',
      'silent',
      ...(opts.args ?? []),
    ],
    {},
  );
  if (loaded.kind !== 'config') {
    throw new Error(`bad test config: ${loaded.kind === 'error' ? loaded.error.message : loaded.kind}`);
  }
  const server = new CairnServer(loaded.config, {
    logger: silentLogger(),
    ...(opts.accessLogOut !== undefined ? { accessLogOut: opts.accessLogOut } : {}),
  });
  await server.start();
  const port = server.addresses()[0]?.port ?? 0;
  const origin = `http://127.0.0.1:${port}`;
  const client = new Agent({ keepAliveTimeout: 10_000 });
  const registryName = `file:${file}`;
  let tmpCount = 0;
  let stopping: Promise<void> | undefined;

  const writeRaw = async (text: string): Promise<void> => {
    // Write then rename, as editors do: the registry never reads half a file.
    const tmp = join(dir, `.routes.${tmpCount++}.tmp`);
    await writeFile(tmp, text);
    await rename(tmp, file);
  };

  const cairn: Cairn = {
    server,
    port,
    origin,
    file,
    client,
    fetch: async (path, o = {}) => {
      const opts: Parameters<typeof request>[1] = {
        dispatcher: client,
        method: (o.method ?? 'GET') as 'GET',
      };
      if (o.headers !== undefined) opts.headers = o.headers;
      if (o.body !== undefined) opts.body = o.body;
      const r = await request(`${origin}${path}`, opts);
      const body = Buffer.from(await r.body.arrayBuffer());
      return { status: r.statusCode, headers: r.headers, body, text: body.toString('utf8') };
    },
    update: async (c) => {
      const before = server.controller.current.table.version;
      await writeRaw(registryYaml(c));
      await waitFor(() => server.controller.current.table.version !== before, 3000, 'table swap');
    },
    writeRaw,
    registryError: () => server.controller.registry(registryName).error ?? '',
    stopServer: (waitMs = 0) => {
      stopping ??= server.stop(waitMs);
      return stopping;
    },
    stop: async (waitMs = 0) => {
      await client.destroy().catch(() => {});
      await cairn.stopServer(waitMs);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return cairn;
}

/** Polls `cond` every 10 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 2000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export interface RawResponse {
  readonly status: number;
  /** Header lines as received, names as written. */
  readonly headers: [string, string][];
  readonly body: string;
  readonly raw: string;
}

/**
 * Writes `head` (request line and headers, CRLF-separated, without the final empty line) plus an
 * optional body on a fresh connection, with `Connection: close` semantics: reads until the server
 * closes. For byte-exact request targets and hop-by-hop headers that HTTP clients refuse to send.
 */
export function rawRequest(port: number, head: string, body = '', timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('raw request timed out'));
    }, timeoutMs);
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.once('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('latin1');
      const end = raw.indexOf('\r\n\r\n');
      const lines = raw.slice(0, end < 0 ? raw.length : end).split('\r\n');
      const status = Number((lines[0] ?? '').split(' ')[1]);
      const headers: [string, string][] = [];
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':');
        if (c > 0) headers.push([l.slice(0, c), l.slice(c + 1).trim()]);
      }
      let body = end < 0 ? '' : raw.slice(end + 4);
      if (
        headers.some(([k, v]) => k.toLowerCase() === 'transfer-encoding' && v.toLowerCase() === 'chunked')
      ) {
        body = dechunk(body);
      }
      resolve({ status, headers, body, raw });
    });
    const h = /\r\nconnection:/i.test(head) ? head : `${head}\r\nConnection: close`;
    sock.write(`${h}\r\n\r\n${body}`);
  });
}

/** Case-insensitive header lookup in a raw response (all values, in order). */
export function rawHeader(r: RawResponse, name: string): string[] {
  const n = name.toLowerCase();
  return r.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

/** Decodes a chunked body (extensions and trailers ignored). */
function dechunk(s: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const eol = s.indexOf('\r\n', i);
    if (eol < 0) return out;
    const size = parseInt(s.slice(i, eol), 16);
    if (!(size > 0)) return out;
    out += s.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
}
