/// <reference lib="dom" />
// The web UI's entry module. It opens the event stream first and loads the full state each time
// the stream (re)connects, so no table swap can fall between a load and the first event. After
// that, `swap` events reload the table, `registry` events update the status bar and `stats`
// events (one a second) update the live columns in place.
//
// `document.body.dataset.version` carries the table version the page shows (tests wait on it).

import { api, type HistoryEntry, type RegistryJson, type StatsEvent } from './api.ts';
import { byId } from './dom.ts';
import { ExplainView } from './explain-view.ts';
import { HistoryView } from './history-view.ts';
import { OverridesView } from './overrides-view.ts';
import { ProblemsView } from './problems-view.ts';
import { RoutesView } from './routes-view.ts';
import { StatusView } from './status-view.ts';

const routes = new RoutesView();
const status = new StatusView();
const problems = new ProblemsView();
const history = new HistoryView();
const overrides = new OverridesView();
new ExplainView();
const live = byId('live');

let loaded = false;
let loading: Promise<void> | undefined;

/** Table, status and problems (after a swap); everything, history included, on (re)connect. */
function reload(withHistory: boolean): Promise<void> {
  const run = async (): Promise<void> => {
    const [rows, st, hist] = await Promise.all([
      api.routes(),
      api.status(),
      withHistory ? api.history() : Promise.resolve(undefined),
    ]);
    routes.setRows(rows, loaded);
    status.set(st);
    problems.set(st.problems);
    overrides.setStatus(st);
    if (hist !== undefined) history.set(hist);
    document.body.dataset.version = st.version;
    if (!loaded) {
      loaded = true;
      await overrides.load();
      document.body.dataset.ready = 'true';
    } else {
      await overrides.load();
    }
  };
  // One load at a time; a swap during a load loads again right after it.
  const next = (loading ?? Promise.resolve()).then(run, run);
  loading = next.catch((e: unknown) => {
    live.textContent = `error: ${(e as Error).message}`;
  });
  return loading;
}

function connect(): void {
  const es = new EventSource('/api/events');
  es.addEventListener('open', () => {
    live.textContent = 'live';
    live.classList.add('on');
    void reload(true);
  });
  es.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.classList.remove('on');
  });
  es.addEventListener('swap', (e) => {
    history.add(JSON.parse((e as MessageEvent<string>).data) as HistoryEntry);
    void reload(false);
  });
  es.addEventListener('registry', (e) => {
    status.registry(JSON.parse((e as MessageEvent<string>).data) as RegistryJson);
  });
  es.addEventListener('stats', (e) => {
    routes.applyStats(JSON.parse((e as MessageEvent<string>).data) as StatsEvent);
  });
}

connect();
setInterval(() => status.tick(), 1000);
