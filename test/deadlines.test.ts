// The deadline queue every close shares (src/deadlines.ts): one timer, a
// binary heap. What the closes rely on: each queued item runs once, never
// before its deadline, in deadline order, never after a cancel; moving one
// earlier takes effect; and the one timer keeps the process alive exactly
// while a ref'd deadline is queued (a close's, for as long as its socket
// would). Judged by what ran and when, and by whether a child process exits.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHook } from 'node:async_hooks';
import * as path from 'node:path';
import { Deadline, deadlineTimer, type Expiring } from '../dist/deadlines.js';
import { inSlices, queuedSlices } from '../dist/slices.js';
import { until } from './helpers';

const execFileAsync = promisify(execFile);
const DEADLINES = path.resolve('dist/deadlines.js');

/** A seeded generator: the same sequence every run (a failure can be replayed). */
function random(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

interface Item extends Expiring { deadlineAt: number; id: number; ranAt: number[] }

describe('the deadline queue', () => {
  it('300 deadlines, some cancelled, some moved earlier: each runs once, never early, in deadline order; cancelled ones never', async () => {
    const next = random(7);
    const order: Item[] = [];
    const start = performance.now();
    const items: Item[] = Array.from({ length: 300 }, (_, id) => ({
      id,
      deadlineAt: start + 20 + Math.floor(next() * 400) + id / 1000, // distinct: the order is checked
      ranAt: [],
      runSlice(this: Item) { this.ranAt.push(performance.now()); order.push(this); },
    }));
    const deadlines = items.map((item) => new Deadline(item, true));
    const cancelled = new Set<number>();
    for (let i = 0; i < 300; i += 4) { deadlines[i].cancel(); cancelled.add(i); }
    deadlines[8].cancel(); // twice: still one removal
    for (let i = 1; i < 300; i += 10) {
      items[i].deadlineAt = Math.max(start + 10 + i / 1000, items[i].deadlineAt - 150);
      deadlines[i].moved();
    }
    await new Promise((r) => setTimeout(r, 700));
    for (const item of items) {
      if (cancelled.has(item.id)) {
        expect(item.ranAt, `cancelled ${item.id}`).toEqual([]);
        continue;
      }
      expect(item.ranAt.length, `item ${item.id} ran once`).toBe(1);
      expect(item.ranAt[0], `item ${item.id} not before its deadline`).toBeGreaterThanOrEqual(item.deadlineAt);
    }
    const expected = items.filter((i) => !cancelled.has(i.id)).sort((a, b) => a.deadlineAt - b.deadlineAt);
    expect(order.map((i) => i.id)).toEqual(expected.map((i) => i.id));
    // Moved, cancelled or run: each is out of the queue (a second cancel or move does nothing).
    for (const deadline of deadlines) { deadline.cancel(); deadline.moved(); }
  });

  it('a deadline cancelled while others wait leaves them due on time; one armed first and cancelled lets a later one through', async () => {
    const ran: string[] = [];
    const at = (ms: number, name: string): Expiring => ({ deadlineAt: performance.now() + ms, runSlice: () => ran.push(name) });
    const first = new Deadline(at(30, 'first'), true);
    new Deadline(at(80, 'second'), true);
    first.cancel();
    await new Promise((r) => setTimeout(r, 60));
    expect(ran).toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    expect(ran).toEqual(['second']);
  });

  const child = (code: string) => execFileAsync(process.execPath, ['-e',
    `const { Deadline } = require(${JSON.stringify(DEADLINES)}); const t0 = performance.now();
     const item = (ms, name) => ({ deadlineAt: t0 + ms, runSlice() { console.log(name, Math.round(performance.now() - t0)); } });
     process.on('exit', () => console.log('exit', Math.round(performance.now() - t0)));
     ${code}`], { timeout: 10_000 });

  it('50 deadlines due together wake the loop once, not in a busy loop; a queue emptied by cancels holds no timer', async () => {
    await new Promise((r) => setImmediate(r)); // a fresh loop turn: the timer's base time is current
    const start = performance.now();
    let ran = 0;
    const item = (at: number): Expiring => ({ deadlineAt: at, runSlice() { ran++; } });
    const fired0 = deadlineTimer().fired;
    for (let i = 0; i < 50; i++) new Deadline(item(start + 200), false);
    // They run in slices (setImmediate) after the timer: wait for them, loosely.
    await until(() => ran >= 50, 5000, () => `all 50 run (${ran} ran)`);
    expect(ran).toBe(50);
    // Once, give or take one firing that finds nothing due yet (Node's timers count loop time).
    expect(deadlineTimer().fired - fired0, 'timer firings for one due time').toBeLessThanOrEqual(2);
    expect(deadlineTimer().fired - fired0, 'timer firings for one due time').toBeGreaterThanOrEqual(1);
    expect(deadlineTimer().armed, 'armed with nothing queued').toBe(false);
    const waiting = Array.from({ length: 5 }, (_, i) => new Deadline(item(performance.now() + 10_000 + i), true));
    try {
      expect(deadlineTimer().armed).toBe(true);
    } finally {
      for (const deadline of waiting) deadline.cancel();
    }
    expect(deadlineTimer().armed, 'armed after every deadline was cancelled').toBe(false);
  });

  it('a ref\'d deadline keeps the process alive until it runs; an unref\'d one does not', async () => {
    const kept = await child(`new Deadline(item(600, 'ran'), true);`);
    const [ran, exit] = kept.stdout.trim().split('\n');
    expect(ran).toMatch(/^ran \d+$/);
    expect(Number(ran.split(' ')[1])).toBeGreaterThanOrEqual(600);
    expect(exit).toMatch(/^exit/);

    const dropped = await child(`new Deadline(item(3000, 'ran'), false);`);
    expect(dropped.stdout.trim()).toMatch(/^exit \d+$/); // never ran: nothing held the process
    expect(Number(dropped.stdout.trim().split(' ')[1])).toBeLessThan(2000);
  });

  it('ref(false) lets the process go; ref(true) again holds it; a cancelled ref\'d one holds nothing', async () => {
    const unrefd = await child(`const d = new Deadline(item(3000, 'ran'), true); d.ref(false);`);
    expect(unrefd.stdout.trim()).toMatch(/^exit \d+$/);

    const again = await child(`const d = new Deadline(item(500, 'ran'), false); d.ref(true);`);
    expect(again.stdout.trim().split('\n')[0]).toMatch(/^ran \d+$/);

    // One ref'd, one not: cancelling the ref'd one leaves a timer that must not hold the process.
    const mixed = await child(`const a = new Deadline(item(3000, 'a'), true); new Deadline(item(4000, 'b'), false); a.cancel();`);
    expect(mixed.stdout.trim()).toMatch(/^exit \d+$/);
    expect(Number(mixed.stdout.trim().split(' ')[1])).toBeLessThan(2000);

    // Two ref'd: unref one, the other still holds until it runs.
    const two = await child(`const a = new Deadline(item(3000, 'a'), true); new Deadline(item(500, 'b'), true); a.ref(false);`);
    expect(two.stdout.trim().split('\n')[0]).toMatch(/^b \d+$/);
  });

  it('expired work runs in slices of the loop: 200 tasks of 0.1 ms each, in order, spread over several turns, more than one per turn', async () => {
    const ran: number[] = [];
    let turns = 0;
    let counting = true;
    const countTurns = () => { turns++; if (counting) setImmediate(countTurns); };
    setImmediate(countTurns);
    const spin = (ms: number) => { const end = performance.now() + ms; while (performance.now() < end); };
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 200; i++) inSlices({ runSlice: () => { spin(0.1); ran.push(i); if (i === 199) resolve(); } });
    });
    counting = false;
    expect(ran).toEqual(Array.from({ length: 200 }, (_, i) => i));
    // 20 ms of work in 2 ms slices: ~10 turns. All at once would be 1; one
    // task a turn, 200. Loose both ways: a preempted slice ends early.
    expect(turns, 'loop turns while the 200 ran').toBeGreaterThanOrEqual(5);
    expect(turns, 'loop turns while the 200 ran').toBeLessThan(100);
    // The queue is empty again: a new task runs on the next turn.
    const next = await new Promise<number>((resolve) => { const t0 = performance.now(); inSlices(() => resolve(performance.now() - t0)); });
    expect(next).toBeLessThan(1000);
    // Drained, the queue gives its slots back: 10,000 deadlines a minute
    // would otherwise grow it without end.
    expect(queuedSlices(), 'slots kept after the queue drained').toBe(0);
  });

  it('a deadline past what a Node timer holds (2^32 ms away) arms a timer that does not fire meanwhile, not one that fires every ms', async () => {
    const fired0 = deadlineTimer().fired;
    const far = new Deadline({ deadlineAt: performance.now() + 2 ** 32, runSlice() {} }, false);
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect(deadlineTimer().armed).toBe(true);
      // A longer timer Node would cut to 1 ms (TimeoutOverflowWarning): ~200 firings here.
      expect(deadlineTimer().fired - fired0, 'firings while the far deadline waits').toBe(0);
    } finally {
      far.cancel();
    }
  });

  it('a deadline queued ahead of the armed timer replaces that timer: the one it replaced, ref\'d, does not hold the process', async () => {
    // a (ref'd, 3 s) arms the timer; b (unref'd, 100 ms) re-arms it earlier;
    // cancelling a leaves only b, which must not keep the process alive.
    const replaced = await child(`const a = new Deadline(item(3000, 'a'), true); new Deadline(item(100, 'b'), false); a.cancel();`);
    expect(replaced.stdout.trim()).toMatch(/^exit \d+$/);
    expect(Number(replaced.stdout.trim().split(' ')[1])).toBeLessThan(2000);
  });

  it('a task queued from inside the last slice of a drain runs, and nothing throws (the drain that queueing scheduled finds the queue empty)', async () => {
    const errors: unknown[] = [];
    const onError = (error: unknown) => { errors.push(error); };
    process.on('uncaughtException', onError);
    try {
      const ran: string[] = [];
      await new Promise<void>((resolve) => {
        inSlices(() => { ran.push('first'); inSlices(() => { ran.push('second'); resolve(); }); });
      });
      // A few more turns: the drain scheduled from inside the first slice runs.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      expect(ran).toEqual(['first', 'second']);
      expect(errors).toEqual([]);
      expect(queuedSlices()).toBe(0);
    } finally {
      process.off('uncaughtException', onError);
    }
  });

  it('one timer for the queue: 1,000 deadlines queued at or after the armed one\'s time create no timer of their own', () => {
    let timers = 0;
    const hook = createHook({ init(_id, type) { if (type === 'Timeout') timers++; } }).enable();
    const start = performance.now();
    const item = (at: number): Expiring => ({ deadlineAt: at, runSlice() {} });
    let deadlines: Deadline[] = [];
    try {
      deadlines = [new Deadline(item(start + 60_000), false)]; // arms the one timer
      for (let i = 0; i < 500; i++) deadlines.push(new Deadline(item(start + 60_000), false)); // due together with it
      for (let i = 0; i < 500; i++) deadlines.push(new Deadline(item(start + 60_001 + i), false)); // due after it
      expect(timers, 'Node timers created').toBeLessThanOrEqual(1); // 0 if an earlier deadline had armed it
    } finally {
      hook.disable();
      for (const deadline of deadlines) deadline.cancel();
    }
    expect(deadlineTimer().armed).toBe(false);
  });

  it('a deadline ref()d twice is counted once: cancelling it lets the process go while an unref\'d one waits', async () => {
    const twice = await child(`const a = new Deadline(item(3000, 'a'), false); a.ref(true); a.ref(true); new Deadline(item(4000, 'b'), false); a.cancel();`);
    expect(twice.stdout.trim()).toMatch(/^exit \d+$/);
    expect(Number(twice.stdout.trim().split(' ')[1])).toBeLessThan(2000);
  });

  it('an unref\'d deadline that ends takes nothing from the count: a ref\'d one after it still holds the process', async () => {
    const after = await child(`new Deadline(item(1000, 'x'), false).cancel(); new Deadline(item(20, 'y'), false); new Deadline(item(500, 'held'), true);`);
    expect(after.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^y \d+$/), expect.stringMatching(/^held \d+$/), expect.stringMatching(/^exit/)]);
  });
});
