// fabio's route command language (`route add|del|weight`), parsed line by line.
//
// fabio rejects the whole text on the first bad line; Cairn reports the bad line as a problem
// (with fabio's exact message) and keeps every other line, so one typo in an override never
// blocks the table.

import type { Problem, RouteCommand } from './types.ts';

const reComment = /^\s*(#|\/\/)/;
const reRouteAdd = /^route\s+add/;
const reRouteDel = /^route\s+del/;
const reRouteWeight = /^route\s+weight/;

const reAdd =
  /^route\s+add\s+(\S+)\s+(\S+)\s+(\S+)(\s+weight\s+(\S+))?(\s+tags\s+"([^"]*)")?(\s+opts\s+"([^"]*)")?$/;
const reDelTags = /^route\s+del\s+tags\s+"([^"]*)"$/;
const reDelSvcTags = /^route\s+del\s+(\S+)\s+tags\s+"([^"]*)"$/;
const reDel = /^route\s+del\s+(\S+)(?:\s+(\S+)(?:\s+(\S+))?)?$/;
const reWeightSvc = /^route\s+weight\s+(\S+)\s+(\S+)\s+weight\s+(\S+)(\s+tags\s+"([^"]*)")?$/;
const reWeightSrc = /^route\s+weight\s+(\S+)\s+weight\s+(\S+)\s+tags\s+"([^"]*)"$/;

const reNumber = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

export interface ParsedCommands {
  readonly commands: RouteCommand[];
  readonly problems: Problem[];
}

class LineError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** Parses route commands; bad lines become problems (`line N: syntax error: ...`), the rest apply. */
export function parseRouteCommands(text: string): ParsedCommands {
  const commands: RouteCommand[] = [];
  const problems: Problem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const s = raw.trim();
    if (s === '' || reComment.test(s)) continue;
    const result = parseLine(s, i + 1);
    if (result instanceof LineError) {
      problems.push({
        source: 'manual',
        severity: 'error',
        line: i + 1,
        input: s,
        reason: `syntax error: ${result.message}`,
      });
    } else {
      commands.push(result);
    }
  }
  return { commands, problems };
}

/** fabio's one-line error text for a problem of a manual command: `line 2: syntax error: ...`. */
export function formatCommandProblem(p: Problem): string {
  return p.line === undefined ? p.reason : `line ${p.line}: ${p.reason}`;
}

function parseLine(s: string, line: number): RouteCommand | LineError {
  if (reRouteAdd.test(s)) return parseAdd(s, line);
  if (reRouteDel.test(s)) return parseDel(s, line);
  if (reRouteWeight.test(s)) return parseWeightCmd(s, line);
  return new LineError("'route' expected");
}

function parseAdd(s: string, line: number): RouteCommand | LineError {
  const m = reAdd.exec(s);
  if (m === null) return new LineError("'route add' invalid");
  const weight = parseWeight(m[5]);
  if (weight === undefined) return new LineError('weight value invalid');
  return {
    cmd: 'route add',
    service: m[1] ?? '',
    src: m[2] ?? '',
    dst: m[3] ?? '',
    weight,
    tags: parseTagList(m[7]),
    opts: parseOptions(m[9]),
    line,
  };
}

function parseDel(s: string, line: number): RouteCommand | LineError {
  let m = reDelTags.exec(s);
  if (m !== null) return del('', '', '', parseTagList(m[1]), line);
  m = reDelSvcTags.exec(s);
  if (m !== null) return del(m[1] ?? '', '', '', parseTagList(m[2]), line);
  m = reDel.exec(s);
  if (m !== null) return del(m[1] ?? '', m[2] ?? '', m[3] ?? '', [], line);
  return new LineError("'route del' invalid");
}

function del(service: string, src: string, dst: string, tags: string[], line: number): RouteCommand {
  return { cmd: 'route del', service, src, dst, weight: 0, tags, opts: {}, line };
}

function parseWeightCmd(s: string, line: number): RouteCommand | LineError {
  let service = '';
  let src: string | undefined;
  let weightText: string | undefined;
  let tagText: string | undefined;
  let m = reWeightSvc.exec(s);
  if (m !== null) {
    service = m[1] ?? '';
    src = m[2];
    weightText = m[3];
    tagText = m[5];
  } else {
    m = reWeightSrc.exec(s);
    if (m === null) return new LineError("'route weight' invalid");
    src = m[1];
    weightText = m[2];
    tagText = m[3];
  }
  const weight = parseWeight(weightText);
  if (weight === undefined) return new LineError('weight value invalid');
  return {
    cmd: 'route weight',
    service,
    src: src ?? '',
    dst: '',
    weight,
    tags: parseTagList(tagText),
    opts: {},
    line,
  };
}

/** fabio's weight: absent -> 0, else a float (Go ParseFloat); undefined means invalid. */
function parseWeight(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return 0;
  if (!reNumber.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** `" a , b "` -> `['a','b']` (trimmed, empty items dropped). */
export function parseTagList(text: string | undefined): string[] {
  if (text === undefined) return [];
  const out: string[] = [];
  for (const part of text.split(',')) {
    const t = part.trim();
    if (t !== '') out.push(t);
  }
  return out;
}

/** `"k=v k2=v2 flag"` -> `{k:'v', k2:'v2', flag:''}`; a value may itself contain '='. */
export function parseOptions(text: string | undefined): Record<string, string> {
  const opts: Record<string, string> = {};
  if (text === undefined) return opts;
  for (const field of text.split(/\s+/)) {
    if (field === '') continue;
    const eq = field.indexOf('=');
    if (eq < 0) opts[field] = '';
    else opts[field.slice(0, eq)] = field.slice(eq + 1);
  }
  return opts;
}

/** Names fabio registers itself under (`opts "register=NAME"` of `route add` lines), in order. */
export function registerAliases(commands: readonly RouteCommand[]): string[] {
  const names: string[] = [];
  for (const c of commands) {
    const name = c.cmd === 'route add' ? c.opts.register : undefined;
    if (name !== undefined && name !== '') names.push(name);
  }
  return names;
}
