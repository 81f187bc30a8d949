// Text forms the CLI prints.

import type { Problem } from '../../routing/types.ts';

/**
 * `# problem: <source> <service/instance or line N>: <reason> (<input>)`; a warning (applied, but
 * something was ignored) says so at the start of its reason.
 */
export function formatProblemLine(p: Problem): string {
  let where = '';
  if (p.line !== undefined && p.source === 'manual') where = `line ${p.line}`;
  else if (p.service !== undefined)
    where = p.instance === undefined ? p.service : `${p.service}/${p.instance}`;
  else if (p.line !== undefined) where = `line ${p.line}`;
  const reason = p.severity === 'warning' ? `warning: ${p.reason}` : p.reason;
  return `# problem: ${p.source}${where === '' ? '' : ` ${where}`}: ${reason} (${p.input})`;
}
