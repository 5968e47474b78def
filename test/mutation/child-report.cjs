// Preloaded (NODE_OPTIONS=--require; a worker thread's execArgv) into Node
// children and worker threads during Stryker's dry
// run: writes the mutants this process reached to a file the parent test's
// setup (child-coverage.ts) reads. Written on a timer as well as at exit,
// since some children end by a signal, which runs no 'exit' handler.
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const dir = process.env.STRYKER_CHILD_COVERAGE_DIR;
if (dir) {
  // A worker thread shares its process's pid: the thread id tells them apart.
  const file = join(dir, `${process.pid}-${require('node:worker_threads').threadId}.json`);
  const write = () => {
    const ns = globalThis.__stryker__;
    if (!ns || !ns.mutantCoverage) return;
    try {
      writeFileSync(file, JSON.stringify({ testId: process.env.STRYKER_CHILD_TEST_ID || null, coverage: ns.mutantCoverage }));
    } catch {}
  };
  setInterval(write, 100).unref();
  process.on('exit', write);
}
