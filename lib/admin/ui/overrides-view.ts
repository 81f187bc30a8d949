/// <reference lib="dom" />
// The overrides editor: the manual route commands with their version. Typing checks the text
// (problems per line, and what it would change in the live table) before anything is saved;
// Save is a compare-and-swap on the version that was loaded, so a concurrent change is shown as
// a conflict instead of being overwritten. The text being edited is never replaced silently.

import { api, ApiError, type ManualCheckJson, type Problem, type StatusJson, type TableDiff } from './api.ts';
import { byId, type Child, fill, h } from './dom.ts';

type Tone = 'ok' | 'error' | 'conflict' | 'info';

export class OverridesView {
  private readonly text = byId<HTMLTextAreaElement>('manual');
  private readonly feedback = byId('manual-feedback');
  private readonly where = byId('manual-where');
  private readonly tokenRow = byId('token-row');
  private readonly token = byId<HTMLInputElement>('token');
  private readonly save = byId<HTMLButtonElement>('manual-save');
  private version = '';
  /** The text as last loaded or saved; the editor is dirty while it differs. */
  private baseline = '';
  private checkTimer: ReturnType<typeof setTimeout> | undefined;
  private checkSeq = 0;
  private readonly = false;

  constructor() {
    this.token.value = sessionStorage.getItem('cairn-admin-token') ?? '';
    this.token.addEventListener('change', () =>
      sessionStorage.setItem('cairn-admin-token', this.token.value),
    );
    this.tokenRow.addEventListener('submit', (e) => e.preventDefault());
    this.text.addEventListener('input', () => {
      clearTimeout(this.checkTimer);
      this.checkTimer = setTimeout(() => void this.check(), 400);
    });
    byId('manual-check').addEventListener('click', () => void this.check());
    this.save.addEventListener('click', () => void this.store());
    byId('manual-reload').addEventListener('click', () => void this.load(true));
  }

  get dirty(): boolean {
    return this.text.value !== this.baseline;
  }

  setStatus(s: StatusJson): void {
    this.readonly = s.admin.readonly;
    this.tokenRow.hidden = !s.admin.token_required;
    this.save.disabled = this.readonly;
    const store =
      s.manual_store === 'memory'
        ? 'in memory (no registry can store them; lost on restart)'
        : `in ${s.manual_store}`;
    fill(
      this.where,
      'route add | route del | route weight, one per line. Stored ',
      h('span', { id: 'manual-store' }, store),
      this.version === ''
        ? null
        : h('span', {}, ', version ', h('code', { id: 'manual-version' }, this.version)),
      this.readonly ? h('strong', {}, ' (read-only)') : null,
      '.',
    );
  }

  /** Loads the stored text; unless `force`, an editor with unsaved changes is left alone. */
  async load(force = false): Promise<void> {
    if (!force && this.dirty) return;
    try {
      const m = await api.manual();
      this.version = m.version;
      this.baseline = m.value;
      this.text.value = m.value;
      const v = document.getElementById('manual-version');
      if (v !== null) v.textContent = m.version;
      if (force) this.say('info', 'Reloaded the stored overrides.');
    } catch (e) {
      this.say('error', `Cannot load the overrides: ${(e as Error).message}`);
    }
  }

  private async check(): Promise<void> {
    const seq = ++this.checkSeq;
    try {
      const r = await api.checkManual(this.text.value);
      if (seq !== this.checkSeq) return;
      if (r.errors > 0)
        this.say('error', `${r.errors} bad line${r.errors === 1 ? '' : 's'}:`, problemList(r.problems));
      else this.say('ok', checkedText(r), diffList(r.changes), problemList(r.problems));
    } catch (e) {
      if (seq === this.checkSeq) this.say('error', (e as Error).message);
    }
  }

  private async store(): Promise<void> {
    if (this.readonly) return;
    clearTimeout(this.checkTimer);
    this.checkSeq++;
    const value = this.text.value;
    this.save.disabled = true;
    try {
      const r = await api.saveManual(value, this.version, this.token.value);
      this.version = r.version;
      this.baseline = value;
      const v = document.getElementById('manual-version');
      if (v !== null) v.textContent = r.version;
      this.say('ok', `Saved (version ${r.version}). The routing table follows within a second.`);
    } catch (e) {
      this.saveFailed(e);
    } finally {
      this.save.disabled = this.readonly;
    }
  }

  private saveFailed(e: unknown): void {
    if (!(e instanceof ApiError)) {
      this.say('error', `Not saved: ${(e as Error).message}`);
      return;
    }
    const b = e.body;
    if (e.status === 409) {
      const theirs = typeof b.value === 'string' ? b.value : '';
      const load = h('button', { type: 'button', id: 'manual-load-current' }, 'Load the current version');
      load.addEventListener('click', () => void this.load(true));
      this.say(
        'conflict',
        h('strong', {}, 'Conflict: '),
        `the overrides were changed by someone else since you loaded them (now version ${String(b.version)}). Your text was not saved and is still here.`,
        h(
          'details',
          {},
          h('summary', {}, 'The current version'),
          h('pre', {}, theirs === '' ? '(empty)' : theirs),
        ),
        h('div', { class: 'row' }, load),
      );
      return;
    }
    if (e.status === 400 && Array.isArray(b.problems)) {
      this.say('error', `Not saved: ${e.message}`, problemList(b.problems as Problem[]));
      return;
    }
    if (e.status === 401) this.tokenRow.hidden = false;
    this.say('error', `Not saved: ${e.message}`);
  }

  private say(tone: Tone, ...children: Child[]): void {
    this.feedback.className = `feedback ${tone}`;
    fill(this.feedback, ...children);
  }
}

function checkedText(r: ManualCheckJson): string {
  const c = r.changes;
  const n = c.added.length + c.removed.length + c.changed.length + c.truncated;
  if (n === 0) return 'No problems. Saving this changes nothing in the routing table.';
  return `No problems. Saving this changes the table: ${c.added.length} added, ${c.removed.length} removed, ${c.changed.length} changed.`;
}

function problemList(problems: readonly Problem[]): HTMLElement | null {
  if (problems.length === 0) return null;
  return h(
    'ul',
    {},
    ...problems.map((p) =>
      h(
        'li',
        {},
        p.line !== undefined ? `line ${p.line}: ` : '',
        p.reason,
        p.severity === 'warning' ? ' (warning)' : '',
      ),
    ),
  );
}

function diffList(d: TableDiff): HTMLElement | null {
  const items = [
    ...d.added.map((l) => h('li', { class: 'add' }, h('code', {}, `+ ${l}`))),
    ...d.removed.map((l) => h('li', { class: 'del' }, h('code', {}, `− ${l}`))),
    ...d.changed.map((c) => h('li', { class: 'chg' }, h('code', {}, `~ ${c.to}`))),
  ];
  if (d.truncated > 0) items.push(h('li', { class: 'muted' }, `… and ${d.truncated} more`));
  return items.length === 0 ? null : h('ul', { class: 'history' }, ...items);
}
