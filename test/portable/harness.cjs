'use strict';
// The harness shared by the in-process behaviour runners, test/windows/run.cjs
// (a real node.exe under Wine) and test/arm64/run.cjs (a real arm64 node under
// qemu-user, or any platform's node). Plain CommonJS and node:assert, no test
// framework, no child processes, real loopback sockets.
//
// A runner registers tests with test(name, fn) and calls run(): one line per
// test ("ok N - name (T ms)" / "not ok N - name (T ms)" and the error as "#"
// lines; "skip - name: reason" for one the runner skipped with skip()), then "N passed, N failed" as the last line (.ci/run parses it);
// exit status 1 on any failure, an uncaught exception or no test run.
//
// Environment:
//   SOCKET_LINGER_TEST_FILTER      run only tests whose name contains it
//   SOCKET_LINGER_SLOW=<factor>    multiply timing limits (qemu: 3)
//   SOCKET_LINGER_DIST             the compiled package (default: dist/)
//   PREBUILDS_ONLY                 default 1: build/Release may hold the
//                                  host's build (another platform's binary)
//
// How a peer's view is judged: a Node peer may report an RST as 'end' (libuv
// turns a hang-up after a partial read into EOF), so the verdict comes from
// the peer's kernel state, read with getTcpInfo: CLOSE_WAIT after a FIN,
// CLOSED (no peer any more) after an RST.

if (process.env.PREBUILDS_ONLY === undefined) process.env.PREBUILDS_ONLY = '1';

const assert = require('node:assert/strict');
const net = require('node:net');
const tls = require('node:tls');
const fs = require('node:fs');
const path = require('node:path');
const { once } = require('node:events');

const ROOT = path.resolve(__dirname, '..', '..');
const DIST = process.env.SOCKET_LINGER_DIST || path.join(ROOT, 'dist');
const sl = require(path.join(DIST, 'index.js'));
const { stallMonitor } = require(path.join(DIST, 'stall.js'));
const fixtures = {
  key: fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'key.pem')),
  cert: fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'cert.pem')),
};
const SLOW = Number(process.env.SOCKET_LINGER_SLOW) || 1;
const STALL_LIMIT_MS = 500 * SLOW; // "the loop did not stall"
const TEST_TIMEOUT_MS = 20_000 * SLOW;
const PAYLOAD = 4 * 1024 * 1024; // far more than loopback's kernel buffers hold

// ---------------------------------------------------------------- registry

const tests = [];
const skips = []; // [name part, reason]: set by a runner before the shared tests register
const only = process.env.SOCKET_LINGER_TEST_FILTER;
function test(name, fn) {
  if (only && !name.includes(only)) return;
  const skipped = skips.find(([part]) => name.includes(part));
  tests.push(skipped ? { name, skip: skipped[1] } : { name, fn });
}
/**
 * Skips in this runner every test whose name contains `namePart`; call it
 * before the tests register. Printed as "skip - name: reason", counted
 * neither passed nor failed.
 */
function skip(namePart, reason) {
  skips.push([namePart, reason]);
}
function note(message) {
  console.log(`# ${message}`);
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** The error thrown synchronously (not a rejection) by fn, with this code. */
function expectThrow(fn, code, ctor) {
  let error;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected ${code}, but nothing was thrown`);
  assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
  if (ctor) assert.ok(error instanceof ctor, `expected a ${ctor.name}, got ${error.constructor.name}`);
  return error;
}

/** The promise functions never throw synchronously: they reject, with this code. */
async function expectReject(fn, code) {
  let promise;
  assert.doesNotThrow(() => { promise = fn(); });
  assert.ok(promise instanceof Promise, 'expected a promise');
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected a rejection with ${code}, but nothing was thrown`);
  assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
  return error;
}

// ---------------------------------------------------------------- sockets

const open = new Set(); // everything a test opened, closed after it

function track(thing) {
  open.add(thing);
  return thing;
}

async function closeAll() {
  for (const thing of open) {
    try {
      if (thing instanceof net.Server) thing.close();
      else thing.destroy();
    } catch {}
  }
  open.clear();
  await delay(20);
}

/**
 * A connected loopback pair. `peer` is the accepted end, half-open so that it
 * never answers a FIN by itself, and paused so it reads only when told. The
 * listener is closed once the connection is accepted unless `keepListening`
 * (on Windows a reset accepted socket and its listener share the local
 * address).
 */
async function connectPair({ host = '127.0.0.1', serverSetup, keepListening = false, connectHost } = {}) {
  const server = track(net.createServer({ allowHalfOpen: true, pauseOnConnect: true }));
  serverSetup?.(server);
  server.listen(0, host);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = track(net.connect({ port: server.address().port, host: connectHost ?? host, allowHalfOpen: true }));
  await once(client, 'connect');
  const [peer] = await accepted;
  track(peer);
  if (!keepListening) server.close();
  return { client, peer, server };
}

/** A connected TLS pair on loopback (self-signed test certificate). */
async function tlsPair({ keepListening = false } = {}) {
  const server = track(tls.createServer({ ...fixtures, allowHalfOpen: true }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection');
  const client = track(tls.connect({
    port: server.address().port, host: '127.0.0.1', rejectUnauthorized: false, allowHalfOpen: true,
  }));
  await once(client, 'secureConnect');
  const [peer] = await accepted;
  track(peer);
  if (!keepListening) server.close();
  return { client, peer, server };
}

/** The kernel's TCP state of a socket, or "error <code>". */
function stateOf(socket) {
  try {
    return sl.getTcpInfo(socket).state;
  } catch (error) {
    return `error ${error.code}`;
  }
}

/**
 * Reads everything until end/error; `done` resolves with what the peer
 * observed, `outcome` judged by its kernel state (see the top of this file).
 */
function watchPeer(peer, { paused = false } = {}) {
  const view = { bytes: 0, ended: false, error: null, stateAtEnd: null, outcome: 'open' };
  const done = new Promise((resolve) => {
    const snapshot = () => {
      view.stateAtEnd = stateOf(peer);
      if (view.error === 'ECONNRESET' || view.stateAtEnd === 'CLOSED') view.outcome = 'RST';
      else if (view.ended && view.stateAtEnd === 'CLOSE_WAIT') view.outcome = 'FIN';
    };
    peer.on('data', (chunk) => { view.bytes += chunk.length; });
    peer.on('end', () => { view.ended = true; snapshot(); resolve(view); });
    peer.on('error', (error) => { view.error = error.code ?? String(error); snapshot(); resolve(view); });
    peer.on('close', () => resolve(view));
  });
  if (!paused) peer.resume();
  return { view, done };
}

async function waitForState(socket, state, timeoutMs = 3000 * SLOW) {
  const deadline = Date.now() + timeoutMs;
  let seen = stateOf(socket);
  while (seen !== state) {
    if (Date.now() > deadline) throw new Error(`socket stayed ${seen}, expected ${state}`);
    await delay(10);
    seen = stateOf(socket);
  }
}

/** Writes without the peer reading until the kernel's buffers are full. */
async function fillUntilBlocked(socket, chunk = 64 * 1024, limit = 64 * 1024 * 1024) {
  const block = Buffer.alloc(chunk, 0x61);
  let written = 0;
  while (written < limit) {
    const flushed = await Promise.race([
      new Promise((resolve) => socket.write(block, () => resolve(true))),
      delay(300 * SLOW).then(() => false),
    ]);
    written += chunk;
    if (!flushed) return written;
  }
  throw new Error('the send buffers never filled');
}

/**
 * Writes blocks, each handed fully to the kernel, until at least `minQueued`
 * bytes sit in the kernel's send queue (the peer must not be reading).
 */
async function fillKernelSendQueue(socket, minQueued = 256 * 1024, chunk = 64 * 1024) {
  const block = Buffer.alloc(chunk, 0x61);
  let written = 0;
  for (let i = 0; i < 4096; i++) {
    const flushed = await Promise.race([
      new Promise((resolve) => socket.write(block, () => resolve(true))),
      delay(500 * SLOW).then(() => false),
    ]);
    if (!flushed) throw new Error('kernel buffers filled before the send queue reached the target');
    written += chunk;
    const info = sl.getTcpInfo(socket);
    // macOS cannot split a non-empty send queue (null): count what was written.
    const queued = info.unsentBytes === null ? written : info.unsentBytes + (info.unackedBytes ?? 0);
    if (queued >= minQueued) return written;
  }
  throw new Error('send queue never filled');
}

/**
 * Longest gap between 5 ms timer ticks (dist/stall.js) while `work` runs and
 * for 30 ms after, up to the moment it stops: how long the loop stalled.
 */
async function measureStall(work) {
  const stall = stallMonitor(5);
  try {
    const result = await work();
    await delay(30);
    return { result, maxStallMs: stall.stop() };
  } finally {
    stall.stop(); // again after a throw: clears the timer
  }
}

// ---------------------------------------------------------------- run

/**
 * Runs the registered tests one after another, each bounded by
 * TEST_TIMEOUT_MS, closing what it opened after it. `header` is printed
 * first as a "#" line.
 */
async function run({ header } = {}) {
  let passed = 0;
  let failed = 0;
  let uncaught = 0;
  let finished = false;
  process.on('uncaughtException', (error) => {
    uncaught++;
    console.log(`not ok - uncaught exception\n${indent(error)}`);
    if (finished) process.exitCode = 1;
  });
  const started = performance.now();
  note(header ?? `node ${process.version} ${process.platform}-${process.arch}`);
  let skipped = 0;
  for (const { name, fn, skip: reason } of tests) {
    if (reason !== undefined) {
      skipped++;
      console.log(`skip - ${name}: ${reason}`);
      continue;
    }
    const t0 = performance.now();
    const took = () => `${(performance.now() - t0).toFixed(0)} ms`;
    try {
      await withTimeout(Promise.resolve().then(fn), TEST_TIMEOUT_MS, name);
      passed++;
      console.log(`ok ${passed + failed} - ${name} (${took()})`);
    } catch (error) {
      failed++;
      console.log(`not ok ${passed + failed} - ${name} (${took()})`);
      console.log(indent(error));
    } finally {
      await closeAll();
    }
  }
  failed += uncaught;
  finished = true;
  note(`${tests.length - skipped} tests in ${((performance.now() - started) / 1000).toFixed(1)} s${skipped ? `, ${skipped} skipped` : ''}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
  setTimeout(() => process.exit(), 100).unref(); // a leftover handle must not keep it alive
}

function indent(error) {
  return String(error && error.stack || error).split('\n').map((l) => `#   ${l}`).join('\n');
}

/** run(), and a runner that itself fails still ends with the result line. */
function main(options) {
  run(options).catch((error) => {
    console.log(`not ok - runner: ${error && error.stack || error}`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  });
}

module.exports = {
  ROOT, DIST, sl, fixtures, SLOW, STALL_LIMIT_MS, TEST_TIMEOUT_MS, PAYLOAD,
  test, skip, note, main, delay, withTimeout, expectThrow, expectReject,
  track, connectPair, tlsPair, stateOf, watchPeer, waitForState,
  fillUntilBlocked, fillKernelSendQueue, measureStall,
};
