/// <reference lib="dom" />
// Problems of the live table: bad tags, bad override lines, bad registry records, each with the
// service and instance (or line) it came from, errors first.

import type { Problem } from './api.ts';
import { byId, fill, h } from './dom.ts';

export class ProblemsView {
  private readonly list = byId('problems');
  private readonly count = byId('problem-count');

  set(problems: readonly Problem[]): void {
    const sorted = [...problems].sort((a, b) =>
      a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1,
    );
    this.count.textContent = String(problems.length);
    this.count.classList.toggle(
      'has',
      problems.some((p) => p.severity === 'error'),
    );
    if (sorted.length === 0) {
      fill(
        this.list,
        h('li', { class: 'muted' }, 'None: every tag, override line and record was understood.'),
      );
      return;
    }
    fill(
      this.list,
      ...sorted.map((p) =>
        h(
          'li',
          {},
          h('span', { class: `sev ${p.severity}` }, p.severity),
          h('strong', {}, origin(p)),
          `: ${p.reason}`,
          p.input === '' ? null : h('code', {}, p.input),
        ),
      ),
    );
  }
}

/** Where a problem came from: `tag of api/api-1`, `override line 3`, `registry record api/x`. */
function origin(p: Problem): string {
  const who = [p.service, p.instance].filter((x) => x !== undefined && x !== '').join('/');
  switch (p.source) {
    case 'tag':
      return who === '' ? 'tag' : `tag of ${who}`;
    case 'manual':
      return p.line !== undefined ? `override line ${p.line}` : 'override';
    case 'registry':
      return who === '' ? 'registry' : `registry record ${who}`;
    case 'config':
      return 'configuration';
  }
}
