// `GET /api/events`: server-sent events for the UI (and anyone who wants to follow along).
//
//   event: swap      data: a change-history entry (version, previous, added/removed/changed lines)
//   event: registry  data: {name, state, since, last_change, error?} when a registry changes state
//   event: stats     data: {at, rows: [{id, health, weight_effective, stats}]} once a second, only
//                    the rows whose numbers changed since the previous tick
//
// A client that falls behind (1 MiB unsent) is dropped; EventSource reconnects by itself and the
// UI reloads the full state when it does.

import type { IncomingMessage, ServerResponse } from 'node:http';

const maxBacklog = 1 << 20;
const heartbeatMs = 15_000;

export class EventStream {
  private readonly clients = new Set<ServerResponse>();
  private heartbeat: NodeJS.Timeout | undefined;

  get size(): number {
    return this.clients.size;
  }

  /** Takes over a request as an event stream. */
  open(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    // How long EventSource waits before reconnecting after the stream ends.
    res.write('retry: 1000\n\n');
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
    if (this.heartbeat === undefined) {
      this.heartbeat = setInterval(() => this.comment('keep-alive'), heartbeatMs);
      this.heartbeat.unref();
    }
  }

  send(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    this.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private comment(text: string): void {
    this.write(`: ${text}\n\n`);
  }

  private write(frame: string): void {
    for (const c of this.clients) {
      if (c.writableLength > maxBacklog) {
        c.destroy();
        this.clients.delete(c);
        continue;
      }
      c.write(frame);
    }
  }
}
