// Session timeouts without a timer per connection (connect, idle, half-close).
//
// `socket.setTimeout()` allocates a Timeout and a bound function per socket, re-arms it on every
// read and write, and costs an event listener; a connect timeout per attempt costs a timer too.
// On short connections (connect, one exchange, close) that was a measurable share of Cairn's
// per-connection work. Instead every session that has a deadline sits in one intrusive doubly
// linked list per (kind, timeout): adding and removing are a few pointer writes (the session
// object is the list node, so nothing is allocated), and one unref'd interval per non-empty list
// sweeps it every `timeout / 8` (5 ms .. 1 s).
//
// Activity (a chunk either way) only stores the coarse clock in the session (`timedSince =
// coarseClock.now`), which every sweep and every add refreshes. The clock can therefore lag by up
// to one tick, so an activity list closes a session after `timeout + tick` on that clock: never
// before `timeout` of real silence, at most two ticks (a quarter of the timeout) late. A
// connect-deadline list records the exact start time and fires within one tick of the deadline.

/** A list member (the session object itself). */
export interface Timed {
  timedPrev: Timed | undefined;
  timedNext: Timed | undefined;
  timedList: TimeoutList | undefined;
  /** Start of the wait (connect lists) or time of the last activity (activity lists), ms. */
  timedSince: number;
  /** The deadline passed; the member was removed from `list` first. */
  timedOut(list: TimeoutList): void;
}

/** Coarse `performance.now()`: refreshed by every sweep and every add. Read it, never write it. */
export const coarseClock = { now: 0 };

export const LIST_CONNECT = 0;
export const LIST_ACTIVITY = 1;

export class TimeoutList {
  readonly kind: number;
  readonly timeoutMs: number;
  readonly tickMs: number;
  /** Silence that expires a member, on the (possibly stale) clock its time was read from. */
  private readonly limitMs: number;
  private head: Timed | undefined;
  private tail: Timed | undefined;
  size = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(kind: number, timeoutMs: number) {
    this.kind = kind;
    this.timeoutMs = timeoutMs;
    this.tickMs = Math.min(1000, Math.max(5, Math.ceil(timeoutMs / 8)));
    this.limitMs = kind === LIST_CONNECT ? timeoutMs : timeoutMs + this.tickMs;
  }

  /** Puts `e` at the tail (moving it from any other list), its wait starting now. */
  add(e: Timed): void {
    if (e.timedList !== undefined) e.timedList.remove(e);
    const now = performance.now();
    coarseClock.now = now;
    e.timedSince = now;
    e.timedList = this;
    e.timedPrev = this.tail;
    e.timedNext = undefined;
    if (this.tail === undefined) this.head = e;
    else this.tail.timedNext = e;
    this.tail = e;
    this.size++;
    // The interval stops itself at a sweep that finds the list empty, not in remove(): lists that
    // fill and empty at every connection would otherwise create a timer per connection.
    if (this.timer === undefined) {
      this.timer = setInterval(sweepList, this.tickMs, this);
      this.timer.unref();
    }
  }

  remove(e: Timed): void {
    if (e.timedList !== this) return;
    const prev = e.timedPrev;
    const next = e.timedNext;
    if (prev === undefined) this.head = next;
    else prev.timedNext = next;
    if (next === undefined) this.tail = prev;
    else next.timedPrev = prev;
    e.timedPrev = undefined;
    e.timedNext = undefined;
    e.timedList = undefined;
    this.size--;
  }

  sweep(): void {
    const now = performance.now();
    coarseClock.now = now;
    const limit = this.limitMs;
    let e = this.head;
    // Members are in the order they were added; only activity lists can hold a later member
    // that expires before an earlier one, so those are scanned whole.
    while (e !== undefined) {
      let next = e.timedNext;
      if (now - e.timedSince >= limit) {
        this.remove(e);
        e.timedOut(this);
        // The callback may have taken `next` out of this list too: start over from the head.
        if (next !== undefined && next.timedList !== this) next = this.head;
      } else if (this.kind === LIST_CONNECT) {
        break;
      }
      e = next;
    }
    if (this.size === 0 && this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Stops the sweeping (the members stay; used when the owner shuts down). */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function sweepList(list: TimeoutList): void {
  list.sweep();
}

/** The lists of one owner, one per (kind, timeout), created on first use. */
export class TimeoutLists {
  private readonly connect = new Map<number, TimeoutList>();
  private readonly activity = new Map<number, TimeoutList>();

  list(kind: number, timeoutMs: number): TimeoutList {
    const m = kind === LIST_CONNECT ? this.connect : this.activity;
    let l = m.get(timeoutMs);
    if (l === undefined) {
      l = new TimeoutList(kind, timeoutMs);
      m.set(timeoutMs, l);
    }
    return l;
  }
}
