// Node's own HTTP parser (llhttp, `_http_common`'s HTTPParser: the one `node:http` uses) and the
// libuv stream handle it can read from directly, typed once for the lean listener (requests)
// and the lean upstream pool (responses). Not a public API, but present and stable across
// Node 18-24; `cairn` pins Node 24. getBuiltinModule works the same from ESM, the compiled
// dist/ and the bundled single executable.

export interface ParserBinding {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | ParseError;
  finish(): number | ParseError | undefined;
  close(): void;
  consume(handle: object): void;
  unconsume(): void;
  getCurrentBuffer(): Buffer;
  [k: number]: unknown;
}

export interface ParserClass {
  new (): ParserBinding;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
}

export interface ParseError extends Error {
  code?: string;
  bytesParsed?: number;
}

/** The libuv stream behind a net.Socket (`socket._handle`), as node:http drives it. */
export interface StreamHandle {
  readonly isStreamBase?: boolean;
  _consumed?: boolean;
  reading?: boolean;
  readStart(): number;
  readStop(): number;
}

export const { HTTPParser, methods } = process.getBuiltinModule('_http_common') as unknown as {
  HTTPParser: ParserClass;
  methods: string[];
};
