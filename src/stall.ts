// Event-loop stall monitor: the longest gap between timer ticks. Used by the
// close matrix (src/matrix.ts), the benchmarks (bench/lib.mjs) and the tests
// (test/helpers.ts, test/portable/harness.cjs) through dist/stall.js; not part
// of the package's public API (src/index.ts does not export it).

export interface StallMonitor {
  /**
   * Stops the timer; the longest gap between ticks in ms, counting the gap
   * from the last tick to now. Unrounded.
   */
  stop(): number;
}

/** Starts a timer ticking every `intervalMs` (default 1) ms. */
export function stallMonitor(intervalMs = 1): StallMonitor {
  let last = performance.now();
  let max = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, performance.now() - last);
    },
  };
}
