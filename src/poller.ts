// One timer for every socket waiting on the kernel: a lingering close polls
// TCP_INFO until its data and FIN are acknowledged. Kernels do not signal an
// ACK to user space, so a shared 10 ms tick is the cheapest precise way.
const POLL_INTERVAL_MS = 10;

/** Returns true once its wait is over; it is then dropped. */
export type Check = () => boolean;

const checks = new Set<Check>();
let timer: NodeJS.Timeout | undefined;

function tick(): void {
  for (const check of checks) {
    let done = true;
    try {
      done = check();
    } finally {
      if (done) checks.delete(check);
    }
  }
  if (checks.size === 0 && timer !== undefined) {
    clearInterval(timer);
    timer = undefined;
  }
}

/** Runs `check` every tick until it returns true; returns a cancel function. */
export function pollUntil(check: Check): () => void {
  checks.add(check);
  timer ??= setInterval(tick, POLL_INTERVAL_MS);
  return () => { checks.delete(check); };
}
