// Upstream connect timeouts without a timer per connection: every attempt with the same timeout
// expires in the order it started, so one FIFO queue and one timer per timeout value suffice.
// An attempt that connects (or fails) first clears its entry, so the queue holds no reference to
// finished work (a session would otherwise stay reachable for the whole timeout).

export interface ConnectWaiter {
  /** Called when attempt number `attempt` has not connected within its timeout. */
  connectDeadline(attempt: number): void;
}

export class Queue {
  private readonly timeoutMs: number;
  private waiters: (ConnectWaiter | undefined)[] = [];
  private attempts: number[] = [];
  private deadlines: number[] = [];
  private head = 0;
  /** Absolute index of waiters[0] (entries before it were dropped by compaction). */
  private base = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.timeoutMs = timeoutMs;
  }

  /** Queues attempt `attempt` of `w`; returns its absolute index. */
  add(w: ConnectWaiter, attempt: number): number {
    const index = this.base + this.waiters.length;
    this.waiters.push(w);
    this.attempts.push(attempt);
    this.deadlines.push(performance.now() + this.timeoutMs);
    if (this.timer === undefined) this.arm();
    return index;
  }

  clear(index: number): void {
    const i = index - this.base;
    if (i >= this.head && i < this.waiters.length) this.waiters[i] = undefined;
  }

  private arm(): void {
    const next = this.deadlines[this.head];
    if (next === undefined) return;
    this.timer = setTimeout(expire, Math.max(1, Math.ceil(next - performance.now())), this);
    this.timer.unref();
  }

  expire(): void {
    this.timer = undefined;
    const now = performance.now();
    while (this.head < this.deadlines.length && (this.deadlines[this.head] as number) <= now) {
      const w = this.waiters[this.head];
      const attempt = this.attempts[this.head] as number;
      // Drop the reference before calling out: the waiter may start another attempt (and add).
      this.waiters[this.head] = undefined;
      this.head++;
      w?.connectDeadline(attempt);
    }
    if (this.head === this.deadlines.length) {
      this.base += this.head;
      this.waiters = [];
      this.attempts = [];
      this.deadlines = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.deadlines.length) {
      this.base += this.head;
      this.waiters = this.waiters.slice(this.head);
      this.attempts = this.attempts.slice(this.head);
      this.deadlines = this.deadlines.slice(this.head);
      this.head = 0;
    }
    this.arm();
  }
}

function expire(q: Queue): void {
  q.expire();
}

export class ConnectDeadlines {
  private readonly queues = new Map<number, Queue>();

  /** The queue of attempts with this timeout. */
  queue(timeoutMs: number): Queue {
    let q = this.queues.get(timeoutMs);
    if (q === undefined) {
      q = new Queue(timeoutMs);
      this.queues.set(timeoutMs, q);
    }
    return q;
  }
}
