import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  coarseClock,
  LIST_ACTIVITY,
  LIST_CONNECT,
  type Timed,
  type TimeoutList,
  TimeoutLists,
} from '../../lib/proxy/tcp/timeout-lists.ts';

class Member implements Timed {
  timedPrev: Timed | undefined = undefined;
  timedNext: Timed | undefined = undefined;
  timedList: TimeoutList | undefined = undefined;
  timedSince = 0;
  firedAt: number | undefined;
  startedAt = performance.now();
  timedOut(): void {
    this.firedAt = performance.now();
  }
  touch(): void {
    this.timedSince = coarseClock.now;
  }
}

describe('tcp timeout lists (shared timers for connect, idle and half-close deadlines)', () => {
  it('ticks at an eighth of the timeout, between 5 ms and 1 s', () => {
    const lists = new TimeoutLists();
    expect(lists.list(LIST_CONNECT, 5000).tickMs).to.equal(625);
    expect(lists.list(LIST_ACTIVITY, 60_000).tickMs).to.equal(1000);
    expect(lists.list(LIST_ACTIVITY, 10).tickMs).to.equal(5);
    expect(lists.list(LIST_CONNECT, 5000)).to.equal(lists.list(LIST_CONNECT, 5000));
    expect(lists.list(LIST_CONNECT, 5000)).to.not.equal(lists.list(LIST_ACTIVITY, 5000));
  });

  it('fires connect deadlines in order, not before the timeout, and never for removed members', async () => {
    const list = new TimeoutLists().list(LIST_CONNECT, 80);
    const a = new Member();
    const b = new Member();
    const c = new Member();
    list.add(a);
    list.add(b);
    list.add(c);
    list.remove(b);
    expect(list.size).to.equal(2);
    await sleep(250);
    expect(a.firedAt).to.be.a('number');
    expect(c.firedAt).to.be.a('number');
    expect(b.firedAt).to.equal(undefined);
    expect((a.firedAt as number) - a.startedAt).to.be.at.least(79);
    expect(list.size).to.equal(0);
    expect(a.timedList).to.equal(undefined);
  });

  it('keeps a member that shows activity and closes a silent one after the timeout', async () => {
    const list = new TimeoutLists().list(LIST_ACTIVITY, 120);
    const busy = new Member();
    const idle = new Member();
    list.add(busy);
    list.add(idle);
    for (let i = 0; i < 8; i++) {
      await sleep(40);
      busy.touch();
    }
    expect(busy.firedAt).to.equal(undefined);
    expect(idle.firedAt).to.be.a('number');
    expect((idle.firedAt as number) - idle.startedAt).to.be.at.least(119);
    list.remove(busy);
  });

  it('moves a member between lists (it is in one list at a time)', () => {
    const lists = new TimeoutLists();
    const connect = lists.list(LIST_CONNECT, 1000);
    const idle = lists.list(LIST_ACTIVITY, 1000);
    const m = new Member();
    connect.add(m);
    idle.add(m);
    expect(connect.size).to.equal(0);
    expect(idle.size).to.equal(1);
    expect(m.timedList).to.equal(idle);
    connect.remove(m); // not a member: no effect
    expect(idle.size).to.equal(1);
    idle.remove(m);
    expect(idle.size).to.equal(0);
    idle.stop();
    connect.stop();
  });
});
