// The library from worker threads: the addon loads in each thread (Node-API
// context awareness), every function works on each thread's own sockets at
// the same time. (Worker teardown with a linger in force:
// test/stress/worker-teardown.test.ts.)
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { closeSocket, getLinger, setLinger } from '../dist/index.js';
import { connectPair, watchPeer } from './helpers';

const DIST = join(__dirname, '..', 'dist', 'index.js');
const SCRIPT = join(__dirname, 'fixtures', 'api-worker.cjs');

interface WorkerReport {
  ok: boolean;
  threadId: number;
  checks: number;
  error?: string;
  maxLingerSeconds?: number;
  resources?: string[];
}

function runWorker(rounds: number): Promise<{ report: WorkerReport | undefined; exitCode: number }> {
  const worker = new Worker(SCRIPT, { workerData: { dist: DIST, rounds } });
  let report: WorkerReport | undefined;
  worker.on('message', (message: WorkerReport) => { report = message; });
  return new Promise((resolve, reject) => {
    worker.on('error', reject);
    worker.on('exit', (exitCode) => resolve({ report, exitCode }));
  });
}

describe('worker threads', () => {
  it('4 workers at once, each calling every function on its own sockets, while the main thread does too', async () => {
    const workers = Promise.all([1, 2, 3, 4].map(() => runWorker(2)));
    // Meanwhile, on the main thread.
    const pair = await connectPair();
    setLinger(pair.client, true, 3);
    expect(getLinger(pair.client)).toEqual({ enabled: true, seconds: 3 });
    const view = watchPeer(pair.peer);
    pair.client.write(Buffer.alloc(1024 * 1024, 1));
    const result = await closeSocket(pair.client);
    expect(result).toMatchObject({ type: 'graceful', waited: true, timedOut: false });
    expect(await view.done).toMatchObject({ bytes: 1024 * 1024, outcome: 'FIN' });
    await pair.close();

    const runs = await workers;
    for (const { report, exitCode } of runs) {
      expect(report?.error).toBeUndefined();
      expect(report?.ok).toBe(true);
      expect(exitCode).toBe(0);
      expect(report!.checks).toBeGreaterThan(40);
      expect(report!.maxLingerSeconds).toBeGreaterThan(0);
      // The worker's own sockets and server are all closed by the time it reports.
      expect(report!.resources!.filter((r) => r.startsWith('TCP'))).toEqual([]);
    }
    expect(new Set(runs.map((r) => r.report!.threadId)).size).toBe(4);
  });
});
