'use strict';
// Behaviour tests that need no test framework and no child processes: plain
// CommonJS, node:assert, real loopback sockets, everything in this one
// process; the harness (registry, runner, loopback pairs, the peer's verdict
// by its kernel state, the stall monitor) is test/portable/harness.cjs, shared
// with test/windows/run.cjs. Written for the linux-arm64 prebuild run by a
// real arm64 node under qemu-user (scripts/test-arm64.sh: no binfmt_misc, so
// vitest's forked workers cannot start there), but nothing in it is
// arm64-specific: `node test/arm64/run.cjs` runs it on any platform against
// the prebuild for that platform (prebuilds/<platform>-<arch>/), e.g. to check
// a freshly built one.
//
// Prints one line per test and ends with "N passed, N failed"; exit status 1
// on any failure.
//
// Environment (and those of test/portable/harness.cjs):
//   SOCKET_LINGER_EXPECT_PREBUILD  the directory the addon must come from
//                                  (e.g. linux-arm64); default: this process's
//                                  <platform>-<arch>

const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { once } = require('node:events');
const h = require('../portable/harness.cjs');
const {
  ROOT, DIST, sl, SLOW, STALL_LIMIT_MS, PAYLOAD, test, main, delay, withTimeout, expectThrow,
  watchPeer, waitForState, fillKernelSendQueue, measureStall,
} = h;
const { native } = require(path.join(DIST, 'native.js'));

// The listeners stay open here: some tests read the server's state afterwards.
const connectPair = (options) => h.connectPair({ keepListening: true, ...options });

/** Writes PAYLOAD, closes with closeSocket under `linger`; result + peer view. */
async function closeRow(linger, peerReads) {
  const { client, peer } = await connectPair();
  sl.setLinger(client, ...linger);
  client.write(Buffer.alloc(PAYLOAD, 0x64));
  const watch = watchPeer(peer, { paused: !peerReads });
  const { result, maxStallMs } = await measureStall(() => sl.closeSocket(client));
  if (!peerReads) peer.resume(); // what reaches it now was queued or kept
  const seen = await Promise.race([watch.done, delay(3000 * SLOW).then(() => watch.view)]);
  return { result, seen, maxStallMs };
}

// ---------------------------------------------------------------- loading

test('loads this platform\'s prebuild through node-gyp-build (CJS and ESM)', async () => {
  const nodeGypBuild = require(require.resolve('node-gyp-build', { paths: [ROOT] }));
  const file = nodeGypBuild.path(ROOT);
  const expected = process.env.SOCKET_LINGER_EXPECT_PREBUILD || `${process.platform}-${process.arch}`;
  assert.match(file, new RegExp(`prebuilds[\\\\/]${expected}[\\\\/]socket-linger[^\\\\/]*\\.node$`));
  console.log(`# ${process.version} ${process.platform}-${process.arch}: ${path.relative(ROOT, file)}`);
  for (const name of ['setLinger', 'getLinger', 'shutdownWrite', 'tcpInfo', 'unacknowledged']) {
    assert.equal(typeof native[name], 'function', name);
  }
  const esm = await import(path.join(DIST, 'index.mjs'));
  for (const name of ['setLinger', 'getLinger', 'shutdown', 'getTcpInfo', 'closeSocket', 'abortiveClose', 'gracefulShutdown']) {
    assert.equal(typeof sl[name], 'function', `CJS ${name}`);
    assert.equal(esm[name], sl[name], `ESM ${name} is the same function`);
  }
  assert.equal(esm.LINGER_MAX_SECONDS, sl.LINGER_MAX_SECONDS);
  assert.ok(Number.isInteger(sl.LINGER_MAX_SECONDS) && sl.LINGER_MAX_SECONDS >= 327);
});

// ---------------------------------------------------------------- linger

test('setLinger/getLinger round trips on client and accepted sockets, 0 .. LINGER_MAX_SECONDS', async () => {
  const { client, peer } = await connectPair();
  for (const socket of [client, peer]) {
    assert.deepEqual(sl.getLinger(socket), { enabled: false, seconds: 0 });
    for (const seconds of [0, 1, 5, 300, sl.LINGER_MAX_SECONDS]) {
      sl.setLinger(socket, true, seconds);
      assert.deepEqual(sl.getLinger(socket), { enabled: true, seconds });
    }
    sl.setLinger(socket, false, 7);
    assert.deepEqual(sl.getLinger(socket), { enabled: false, seconds: 0 });
    sl.setLinger(socket, true); // seconds default to 0
    assert.deepEqual(sl.getLinger(socket), { enabled: true, seconds: 0 });
  }
});

test('net.Server: set before listen(), inherited by every accepted socket', async () => {
  const { client, peer, server } = await connectPair({ serverSetup: (s) => sl.setLinger(s, true, 0) });
  assert.deepEqual(sl.getLinger(server), { enabled: true, seconds: 0 });
  assert.deepEqual(sl.getLinger(peer), { enabled: true, seconds: 0 });
  assert.deepEqual(sl.getLinger(client), { enabled: false, seconds: 0 });
});

test('linger 0 + destroy(): the peer gets an RST (ECONNRESET), unsent data lost', async () => {
  const { client, peer } = await connectPair();
  sl.setLinger(client, true, 0);
  client.write(Buffer.alloc(PAYLOAD));
  await delay(50);
  const watch = watchPeer(peer);
  client.destroy();
  const view = await withTimeout(watch.done, 5000 * SLOW, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
  assert.ok(view.bytes < PAYLOAD);
  // A reset peer that was reading at the time sees the error itself.
  const pair2 = await connectPair();
  const watch2 = watchPeer(pair2.peer);
  sl.setLinger(pair2.client, true, 0);
  pair2.client.destroy();
  const view2 = await withTimeout(watch2.done, 5000 * SLOW, 'peer end');
  assert.equal(view2.error, 'ECONNRESET', JSON.stringify(view2));
});

// ---------------------------------------------------------------- close guard

if (process.platform === 'linux') {
  test('control: the raw kernel SO_LINGER {on, 1} does block destroy() on Linux', async () => {
    const { client } = await connectPair();
    await fillKernelSendQueue(client);
    assert.equal(native.setLinger(client._handle.fd, true, 1), 0); // straight to the kernel, no guard
    const { maxStallMs } = await measureStall(async () => { client.destroy(); });
    assert.ok(maxStallMs > 800, `the loop stalled only ${maxStallMs.toFixed(0)} ms`);
  });
}

test('close guard: destroy() with linger n > 0 and data unsent never stalls the loop; peer gets all + FIN', async () => {
  const { client, peer } = await connectPair();
  sl.setLinger(client, true, 3);
  const written = await fillKernelSendQueue(client, 1024 * 1024);
  const { maxStallMs } = await measureStall(async () => {
    client.destroy();
    await once(client, 'close');
  });
  assert.ok(maxStallMs < STALL_LIMIT_MS, `the loop stalled ${maxStallMs.toFixed(0)} ms`);
  const view = await withTimeout(watchPeer(peer).done, 10000 * SLOW, 'peer end');
  assert.deepEqual([view.bytes, view.outcome], [written, 'FIN']);
});

test('close guard: accepted sockets that inherited linger n > 0 close without stalling', async () => {
  const { client, peer } = await connectPair({ serverSetup: (s) => sl.setLinger(s, true, 3) });
  assert.deepEqual(sl.getLinger(peer), { enabled: true, seconds: 3 });
  const written = await fillKernelSendQueue(peer, 1024 * 1024);
  const watch = watchPeer(client, { paused: true });
  const { maxStallMs } = await measureStall(async () => {
    peer.destroy();
    await once(peer, 'close');
  });
  assert.ok(maxStallMs < STALL_LIMIT_MS, `the loop stalled ${maxStallMs.toFixed(0)} ms`);
  client.resume();
  const view = await withTimeout(watch.done, 10000 * SLOW, 'client end');
  assert.deepEqual([view.bytes, view.outcome], [written, 'FIN']);
});

// ---------------------------------------------------------------- shutdown

test("shutdown(s, 'read'): data arriving later resets the connection (SD_RECEIVE)", async () => {
  const { client, peer } = await connectPair();
  client.on('end', () => {});
  sl.shutdown(client, 'read');
  const clientError = new Promise((resolve) => client.once('error', resolve));
  const watch = watchPeer(peer);
  peer.write('too late');
  const error = await withTimeout(clientError, 5000 * SLOW, 'client error');
  assert.equal(error.code, 'ECONNRESET');
  const view = await withTimeout(watch.done, 5000 * SLOW, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
});

// ---------------------------------------------------------------- close matrix

for (const peerReads of [true, false]) {
  const who = peerReads ? 'a reading peer' : 'a non-reading peer';
  test(`closeSocket row 1 (linger off), ${who}: graceful, no wait; every byte + FIN`, async () => {
    const { result, seen, maxStallMs } = await closeRow([false], peerReads);
    assert.equal(result.type, 'graceful');
    assert.equal(result.waited, false);
    assert.equal(result.timedOut, false);
    assert.ok(result.elapsedMs < 100 * SLOW, `took ${result.elapsedMs} ms`);
    assert.deepEqual([seen.bytes, seen.outcome], [PAYLOAD, 'FIN']);
    assert.ok(maxStallMs < STALL_LIMIT_MS, `the loop stalled ${maxStallMs.toFixed(0)} ms`);
  });

  test(`closeSocket row 2 (linger 0), ${who}: abortive, no wait; RST, data lost`, async () => {
    const { result, seen } = await closeRow([true, 0], peerReads);
    assert.deepEqual([result.type, result.waited, result.timedOut], ['abortive', false, false]);
    assert.ok(result.elapsedMs < 100 * SLOW, `took ${result.elapsedMs} ms`);
    assert.equal(seen.outcome, 'RST', JSON.stringify(seen));
    assert.ok(seen.bytes < PAYLOAD);
  });
}

test('closeSocket row 3 (linger n), a reading peer: waits, graceful well before n; every byte + FIN', async () => {
  const { result, seen, maxStallMs } = await closeRow([true, 5], true);
  assert.deepEqual([result.type, result.waited, result.timedOut], ['graceful', true, false]);
  assert.ok(result.elapsedMs < 4000, `took ${result.elapsedMs} ms`);
  assert.deepEqual([seen.bytes, seen.outcome], [PAYLOAD, 'FIN']);
  assert.ok(maxStallMs < STALL_LIMIT_MS, `the loop stalled ${maxStallMs.toFixed(0)} ms`);
});

test('closeSocket row 3 (linger n), a non-reading peer: RST at n s, timedOut, no stall', async () => {
  const { result, seen, maxStallMs } = await closeRow([true, 1], false);
  assert.deepEqual([result.type, result.waited, result.timedOut], ['abortive', true, true]);
  assert.ok(result.elapsedMs >= 990 && result.elapsedMs < 1000 + 1000 * SLOW, `took ${result.elapsedMs} ms`);
  assert.equal(seen.outcome, 'RST', JSON.stringify(seen));
  assert.ok(seen.bytes < PAYLOAD);
  assert.ok(maxStallMs < STALL_LIMIT_MS, `the loop stalled ${maxStallMs.toFixed(0)} ms`);
});

// ---------------------------------------------------------------- tcp info

test('getTcpInfo: LISTEN, ESTABLISHED, FIN_WAIT_2 / CLOSE_WAIT, queue figures', async () => {
  const { client, peer, server } = await connectPair();
  assert.equal(sl.getTcpInfo(server).state, 'LISTEN');
  const info = sl.getTcpInfo(client);
  assert.equal(info.state, 'ESTABLISHED');
  for (const key of ['unsentBytes', 'unackedBytes']) {
    assert.ok(info[key] === null || info[key] === 0, `${key} ${info[key]}`);
  }
  const written = await fillKernelSendQueue(client);
  const full = sl.getTcpInfo(client);
  if (full.unsentBytes !== null) assert.ok(full.unsentBytes + full.unackedBytes > 0 && full.unsentBytes + full.unackedBytes <= written);
  watchPeer(peer);
  sl.shutdown(client, 'write');
  await waitForState(client, 'FIN_WAIT_2');
  await waitForState(peer, 'CLOSE_WAIT');
  assert.deepEqual(
    [sl.getTcpInfo(client).unsentBytes ?? 0, sl.getTcpInfo(client).unackedBytes ?? 0], [0, 0]);
});

test('IPv6 loopback: linger round trip, tcp info, RST', async () => {
  let pair;
  try {
    pair = await connectPair({ host: '::1' });
  } catch (error) {
    console.log(`# skipped: no IPv6 loopback (${error.code})`);
    return;
  }
  sl.setLinger(pair.client, true, 0);
  assert.deepEqual(sl.getLinger(pair.client), { enabled: true, seconds: 0 });
  assert.equal(sl.getTcpInfo(pair.client).state, 'ESTABLISHED');
  const watch = watchPeer(pair.peer);
  pair.client.destroy();
  assert.equal((await withTimeout(watch.done, 5000 * SLOW, 'peer end')).outcome, 'RST');
});

// ---------------------------------------------------------------- errors

// Not under Wine: its shutdown() on a reset socket succeeds.
test('errors: a system error carries code, errno and syscall (shutdown ENOTCONN)', async () => {
  const { client, peer } = await connectPair();
  sl.setLinger(client, true, 0);
  client.destroy(); // the peer (not reading) is reset underneath
  await waitForState(peer, 'CLOSED');
  const error = expectThrow(() => sl.shutdown(peer, 'write'), 'ENOTCONN', Error);
  assert.equal(error.syscall, 'shutdown');
  assert.ok(error.errno < 0);
  assert.match(error.message, /^shutdown ENOTCONN/);
});

// ---------------------------------------------------------------- shared

require('../portable/tests.cjs'); // the tests both runners run

// ---------------------------------------------------------------- run

main();
