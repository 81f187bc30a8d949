// A worker's once-a-second traffic report to the control process: for every cell with traffic
// since the previous report, the counter deltas and the new latency samples; and what is open
// per target right now. The control process adds them up on its own cells (Traffic.absorb), so
// /api/routes and the UI's live columns show the whole pool.

import type { Telemetry } from '../stats/telemetry.ts';
import type { TrafficCell } from '../stats/traffic-cell.ts';
import type { CellDelta } from './protocol.ts';

interface Sent {
  requests: number;
  errors5xx: number;
  connectErrors: number;
  latencies: number;
}

export class StatsReporter {
  private readonly telemetry: Telemetry;
  /** What the previous report covered, per cell (cells that left the table drop out with it). */
  private readonly sent = new WeakMap<TrafficCell, Sent>();

  constructor(telemetry: Telemetry) {
    this.telemetry = telemetry;
    // This process's live windows only feed these reports: the control keeps the rates.
    telemetry.traffic.latencyOnly();
  }

  report(): { cells: CellDelta[]; open: [string, number][]; ejected: string[] } {
    const traffic = this.telemetry.traffic;
    const cells: CellDelta[] = [];
    for (const cell of traffic.cells()) {
      const w = cell.window;
      if (w === undefined) continue;
      let s = this.sent.get(cell);
      if (s === undefined) {
        s = { requests: 0, errors5xx: 0, connectErrors: 0, latencies: 0 };
        this.sent.set(cell, s);
      }
      const requests = cell.requests - s.requests;
      const errors5xx = cell.errors5xx - s.errors5xx;
      const connectErrors = cell.connectErrors - s.connectErrors;
      if (requests === 0 && errors5xx === 0 && connectErrors === 0 && w.latencyTotal === s.latencies)
        continue;
      const latencies: number[] = [];
      if (!cell.tcp) w.latenciesSince(s.latencies, latencies);
      cells.push({ key: traffic.keyOf(cell), requests, errors5xx, connectErrors, latencies });
      s.requests = cell.requests;
      s.errors5xx = cell.errors5xx;
      s.connectErrors = cell.connectErrors;
      s.latencies = w.latencyTotal;
    }
    const open: [string, number][] = [];
    const ejected = new Set<string>();
    const openOf = this.telemetry.openCounts();
    for (const r of this.telemetry.tableRoutes()) {
      for (const t of r.targets) {
        const n = openOf(r, t);
        if (n > 0) open.push([`${r.src}\u0000${t.key}`, n]);
        if (this.telemetry.targetHealth(t).health === 'ejected') ejected.add(t.key);
      }
    }
    return { cells, open, ejected: [...ejected] };
  }
}
