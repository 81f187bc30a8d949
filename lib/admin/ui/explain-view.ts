/// <reference lib="dom" />
// "Where does this URL go, and why": the chosen route, the target the balancer would pick next,
// every target of the route with its share and health, and the candidates that lost, with why.

import { api, type ExplainOutput } from './api.ts';
import { byId, fill, h } from './dom.ts';
import { formatPercent } from './format.ts';

export class ExplainView {
  private readonly input = byId<HTMLInputElement>('explain-url');
  private readonly out = byId('explain-result');

  constructor() {
    byId<HTMLFormElement>('explain-form').addEventListener('submit', (e) => {
      e.preventDefault();
      void this.explain(this.input.value.trim());
    });
  }

  private async explain(url: string): Promise<void> {
    if (url === '') return;
    fill(this.out, h('p', { class: 'muted' }, 'Explaining…'));
    try {
      this.render(await api.explain(url));
    } catch (e) {
      fill(this.out, h('p', { class: 'bad' }, (e as Error).message));
    }
  }

  private render(r: ExplainOutput): void {
    const parts: Node[] = [];
    if (r.route === null) {
      parts.push(
        h(
          'p',
          { id: 'explain-verdict' },
          h('strong', {}, 'No route'),
          ' matches ',
          h('code', {}, r.url),
          '.',
        ),
      );
    } else {
      const route = r.route;
      parts.push(
        h(
          'dl',
          { class: 'explain' },
          h('dt', {}, 'Route'),
          h('dd', { id: 'explain-route' }, h('code', {}, route.src), ` (${route.proto}) → ${route.service}`),
          h('dt', {}, 'Next target'),
          h(
            'dd',
            { id: 'explain-target' },
            r.target === null ? h('span', { class: 'bad' }, 'none available (503)') : h('code', {}, r.target),
          ),
          route.opts === '' ? null : h('dt', {}, 'Options'),
          route.opts === '' ? null : h('dd', {}, h('code', {}, route.opts)),
        ),
        h('p', { class: 'small muted' }, 'Targets'),
        h(
          'ul',
          { class: 'explain-list' },
          ...route.targets.map((t) =>
            h(
              'li',
              {},
              h('code', {}, t.dst),
              ` ${t.service}, ${formatPercent(t.weight)}`,
              t.healthy ? null : h('span', { class: 'bad' }, ' (unavailable)'),
            ),
          ),
        ),
      );
    }
    if (r.rejected.length > 0) {
      parts.push(
        h('p', { class: 'small muted' }, 'Not chosen'),
        h(
          'ul',
          { class: 'explain-list', id: 'explain-rejected' },
          ...r.rejected.map((x) => h('li', {}, h('code', {}, x.src), `: ${x.reason}`)),
        ),
      );
    }
    fill(this.out, ...parts);
  }
}
