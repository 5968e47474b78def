// Every close's deadline in one timer. Ten thousand closes that time out
// together would otherwise be ten thousand Node timers (each a Timeout, a
// closure and its context kept for the whole wait, and ten thousand
// callbacks in one timers phase): here they are entries in one binary heap
// (earliest first, each knowing its index, so a close that ends early leaves
// no garbage behind), one timer armed for the earliest, and the expired ones
// run through the per-iteration budget (slices.ts).
//
// The timer keeps the process alive while any entry asks it to: a close's
// deadline does that for as long as its socket would (Node's ref/unref).
import { inSlices, type SliceTask } from './slices';

export interface Expiring extends SliceTask {
  /** performance.now() at which runSlice() is due; read when queued and when moved. */
  readonly deadlineAt: number;
}

/** Node timers hold at most 2^31-1 ms; a later deadline re-arms on the way. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const heap: Deadline[] = [];
let refs = 0;
let timer: NodeJS.Timeout | undefined;
let timerAt = Infinity;
/** Times the timer fired (tests: it wakes the loop once per due time, not in a busy loop). */
let firings = 0;

/** A queued deadline (its own heap entry): cancel() before it runs, ref() for whether it keeps the process alive. */
export class Deadline {
  at: number;
  /** Its place in the heap, -1 once it ran or was cancelled. */
  index: number;

  constructor(readonly item: Expiring, public refd: boolean) {
    this.at = item.deadlineAt;
    this.index = heap.length;
    heap.push(this);
    if (refd) refs++;
    siftUp(this.index);
    arm();
  }

  /** Moves it to the item's (earlier) deadlineAt. */
  moved(): void {
    if (this.index < 0) return;
    this.at = this.item.deadlineAt;
    siftUp(this.index);
    arm();
  }

  ref(refd: boolean): void {
    if (this.index < 0 || this.refd === refd) return;
    this.refd = refd;
    refs += refd ? 1 : -1;
    refTimer();
  }

  cancel(): void {
    if (this.index < 0) return;
    remove(this);
    // A timer armed for an earlier entry may stay: it finds nothing due and re-arms.
    if (heap.length === 0) disarm();
    else refTimer();
  }
}

function disarm(): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  timerAt = Infinity;
}

/** The timer due no later than the earliest entry, ref'd while any ref'd entry waits. */
function arm(): void {
  if (heap.length === 0) return disarm();
  const at = heap[0].at;
  if (timer === undefined || timerAt > at) {
    if (timer !== undefined) clearTimeout(timer);
    timerAt = at;
    // Node timers count whole ms of loop time: ceil, so none fires early.
    timer = setTimeout(expire, Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(at - performance.now()))));
  }
  // Also when the timer stays: a ref'd entry behind an unref'd earlier one must hold the process.
  refTimer();
}

function refTimer(): void {
  if (timer === undefined) return;
  if (refs > 0) timer.ref();
  else timer.unref();
}

function expire(): void {
  firings++;
  timer = undefined;
  timerAt = Infinity;
  const now = performance.now();
  while (heap.length > 0 && heap[0].at <= now) {
    const entry = heap[0];
    remove(entry);
    inSlices(entry.item);
  }
  arm();
}

function remove(entry: Deadline): void {
  const index = entry.index;
  const last = heap.pop()!;
  if (entry.refd) refs--;
  entry.index = -1;
  if (last === entry) return;
  heap[index] = last;
  last.index = index;
  siftDown(index);
  siftUp(last.index);
}

function siftUp(index: number): void {
  const entry = heap[index];
  while (index > 0) {
    const parentIndex = (index - 1) >> 1;
    const parent = heap[parentIndex];
    if (parent.at <= entry.at) break;
    heap[index] = parent;
    parent.index = index;
    index = parentIndex;
  }
  heap[index] = entry;
  entry.index = index;
}

function siftDown(index: number): void {
  const entry = heap[index];
  const half = heap.length >> 1;
  while (index < half) {
    let childIndex = 2 * index + 1;
    let child = heap[childIndex];
    const right = childIndex + 1;
    if (right < heap.length && heap[right].at < child.at) {
      childIndex = right;
      child = heap[right];
    }
    if (entry.at <= child.at) break;
    heap[index] = child;
    child.index = index;
    index = childIndex;
  }
  heap[index] = entry;
  entry.index = index;
}

/** How often the one timer has fired, and whether it is armed now. For tests. */
export function deadlineTimer(): { fired: number; armed: boolean } {
  return { fired: firings, armed: timer !== undefined };
}
