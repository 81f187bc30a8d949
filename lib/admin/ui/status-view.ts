/// <reference lib="dom" />
// The status bar: each registry (up / stale / down, since when), the table version and when it
// last changed. Relative times are refreshed every second by `tick()`.

import type { RegistryJson, StatusJson } from './api.ts';
import { byId, fill, h } from './dom.ts';
import { formatAgo } from './format.ts';

const stateText: Readonly<Record<RegistryJson['state'], string>> = {
  starting: 'starting',
  up: 'up',
  stale: 'stale',
  down: 'down',
};

export class StatusView {
  private status: StatusJson | undefined;
  // The bar re-renders every second (relative times), so it is not a live region; state
  // changes are announced through a separate one.
  private readonly el = byId('status');
  private readonly announce = byId('announce');

  set(status: StatusJson): void {
    this.status = status;
    this.render();
  }

  /** A registry changed state (SSE `registry` event); announced to screen readers once. */
  registry(r: RegistryJson): void {
    if (this.status === undefined) return;
    const list = this.status.registries;
    const i = list.findIndex((x) => x.name === r.name);
    const registries = i < 0 ? [...list, r] : list.map((x, j) => (j === i ? r : x));
    this.status = { ...this.status, registries };
    this.announce.textContent = `Registry ${r.name} is ${stateText[r.state]}${r.error !== undefined ? `: ${r.error}` : ''}`;
    this.render();
  }

  tick(): void {
    this.render();
  }

  private render(): void {
    const s = this.status;
    if (s === undefined) return;
    const now = Date.now();
    const chips = s.registries.map((r) => {
      const since = formatAgo(Date.parse(r.since), now);
      const label =
        r.state === 'up'
          ? `${r.name}: up, last change ${formatAgo(Date.parse(r.last_change), now)}`
          : `${r.name}: ${stateText[r.state]} since ${since}${r.error !== undefined ? ` (${r.error})` : ''}`;
      return h(
        'span',
        { class: `chip ${r.state}`, title: label, 'data-registry': r.name },
        h('span', { class: 'dot', 'aria-hidden': 'true' }),
        h('span', {}, r.name),
        h('strong', {}, stateText[r.state]),
        r.state === 'up' ? null : h('span', { class: 'muted' }, since),
      );
    });
    if (chips.length === 0) chips.push(h('span', { class: 'chip down' }, 'no registry'));
    fill(
      this.el,
      ...chips,
      h(
        'span',
        { class: 'muted', id: 'table-version', title: `table version ${s.version}` },
        'table ',
        h('code', {}, s.version.slice(0, 8)),
        ` · ${s.routes} route${s.routes === 1 ? '' : 's'} · changed ${formatAgo(Date.parse(s.built_at), now)}`,
      ),
      s.shutting_down ? h('strong', { class: 'bad' }, 'shutting down') : null,
      s.draining.length > 0
        ? h(
            'span',
            {
              class: 'muted',
              title: s.draining.map((d) => `${d.service} ${d.dst}: ${d.open} open`).join('\n'),
            },
            `${s.draining.length} target${s.draining.length === 1 ? '' : 's'} draining`,
          )
        : null,
      s.metrics
        ? null
        : h('span', { class: 'muted', title: 'started with --metrics=false' }, 'live traffic off'),
    );
  }
}
