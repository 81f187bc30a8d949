// A worker's once-a-second traffic report to the control process: for every cell with traffic
// since the previous report, the counter deltas and the new latency samples; and what is open
// per target right now. The control process adds them up on its own cells (Traffic.absorb), so
// /api/routes and the UI's live columns show the whole pool.

import type { Telemetry } from '../stats/telemetry.ts';
import type { CellDelta } from './protocol.ts';

export class StatsReporter {
  private readonly telemetry: Telemetry;

  constructor(telemetry: Telemetry) {
    this.telemetry = telemetry;
    // This process's cells only feed these reports: the control keeps the rates and percentiles.
    telemetry.traffic.reportOnly();
  }

  report(): { cells: CellDelta[]; open: [string, number][]; ejected: string[] } {
    const traffic = this.telemetry.traffic;
    const cells: CellDelta[] = [];
    const latencies = traffic.takeLatencies();
    for (const cell of traffic.cells()) {
      // What the previous report covered is kept on the cell (cells that left the table drop out with it).
      const requests = cell.requests - cell.reportedRequests;
      const errors5xx = cell.errors5xx - cell.reportedErrors5xx;
      const connectErrors = cell.connectErrors - cell.reportedConnectErrors;
      const lat = cell.tcp ? undefined : latencies.get(cell);
      if (requests === 0 && errors5xx === 0 && connectErrors === 0 && lat === undefined) continue;
      cells.push({ key: traffic.keyOf(cell), requests, errors5xx, connectErrors, latencies: lat ?? [] });
      cell.reportedRequests = cell.requests;
      cell.reportedErrors5xx = cell.errors5xx;
      cell.reportedConnectErrors = cell.connectErrors;
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
