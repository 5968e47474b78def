// Closing is work the kernel does synchronously (a FIN or RST goes out inside
// close()): 10-100 us a socket. When hundreds of lingering closes reach their
// deadline, or their delivery, in the same tick, doing them all at once would
// stall the loop for tens of ms: they run for at most BUDGET_MS per loop
// iteration instead, the rest in the next ones. 2 ms: the close callbacks
// Node runs for a slice's sockets come after it, outside the budget, and
// about double a loop turn (4 ms slices made 8-10 ms turns at 10,000 closes).
const BUDGET_MS = 2;

/** A queued piece of work that needs no closure of its own (one per close, kept small). */
export interface SliceTask {
  runSlice(): void;
}

type Task = (() => void) | SliceTask;

const queue: Task[] = [];
let head = 0;

function drain(): void {
  if (head >= queue.length) return; // an earlier drain took these already
  const stop = performance.now() + BUDGET_MS;
  try {
    do {
      const task = queue[head];
      queue[head++] = undefined as never;
      if (typeof task === 'function') task();
      else task.runSlice();
    } while (head < queue.length && performance.now() < stop);
  } finally {
    // A task that throws reaches the process as any callback's error does;
    // the tasks after it still run.
    if (head < queue.length) {
      setImmediate(drain);
    } else {
      queue.length = 0;
      head = 0;
    }
  }
}

/** Runs `task` soon, within a per-iteration time budget shared by all tasks. */
export function inSlices(task: Task): void {
  queue.push(task);
  // Stryker disable next-line ArithmeticOperator: head > 0 only while a drain is under way (inside a task, or between drains split by the time budget, when finally has queued the next): it takes the new task anyway; with head 0, `+` and `-` agree
  if (queue.length - head === 1) setImmediate(drain);
}

/** The queue's slots, run or waiting: 0 once it has drained (its memory is given back). For tests. */
export function queuedSlices(): number {
  return queue.length;
}
