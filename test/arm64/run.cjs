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
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { once } = require('node:events');
const h = require('../portable/harness.cjs');
const {
  ROOT, DIST, sl, SLOW, STALL_LIMIT_MS, test, main, delay, withTimeout, expectThrow, expectReject,
  track, watchPeer, waitForState, fillKernelSendQueue, measureStall,
} = h;
const { native } = require(path.join(DIST, 'native.js'));
const PAYLOAD = 4 * 1024 * 1024; // far more than loopback's kernel buffers hold

// The listeners stay open here: some tests read the server's state afterwards.
const connectPair = (options) => h.connectPair({ keepListening: true, ...options });
const tlsPair = () => h.tlsPair({ keepListening: true });

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
  for (const name of ['setLinger', 'getLinger', 'shutdown', 'tcpInfo', 'sendAcknowledged']) {
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

test('setLinger before connect is applied on connect', async () => {
  const server = track(net.createServer({ pauseOnConnect: true }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = track(new net.Socket());
  sl.setLinger(client, true, 4);
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 4 }); // pending setting
  client.connect(server.address().port, '127.0.0.1');
  await once(client, 'connect');
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 4 });
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

test('control: plain destroy() (linger off): the peer gets every byte and a FIN', async () => {
  const { client, peer } = await connectPair();
  client.write(Buffer.alloc(PAYLOAD));
  const watch = watchPeer(peer, { paused: true });
  client.end();
  await delay(50);
  peer.resume();
  const view = await withTimeout(watch.done, 10000 * SLOW, 'peer end');
  assert.deepEqual([view.bytes, view.outcome], [PAYLOAD, 'FIN']);
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

test("shutdown(s, 'write'): the peer gets every byte and a FIN; the socket still reads", async () => {
  const { client, peer } = await connectPair();
  client.write(Buffer.alloc(256 * 1024));
  sl.shutdown(client, 'write');
  const view = await withTimeout(watchPeer(peer).done, 10000 * SLOW, 'peer end');
  assert.deepEqual([view.bytes, view.outcome], [256 * 1024, 'FIN']);
  const got = once(client, 'data');
  peer.write('still reading');
  assert.equal(String((await got)[0]), 'still reading');
});

test("shutdown(s, 'write') with nothing buffered: FIN_WAIT_2 now", async () => {
  const { client, peer } = await connectPair();
  sl.shutdown(client, 'write');
  await waitForState(client, 'FIN_WAIT_2');
  await waitForState(peer, 'CLOSE_WAIT');
});

test("shutdown(s, 'read'): 'end' at once, writes still reach the peer", async () => {
  const { client, peer } = await connectPair();
  const ended = once(client, 'end');
  sl.shutdown(client, 'read');
  await withTimeout(ended, 2000 * SLOW, "local 'end'");
  const got = once(peer.resume(), 'data');
  client.write('after read shutdown');
  assert.equal(String((await got)[0]), 'after read shutdown');
});

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

test("shutdown(s, 'both'): 'end' locally, FIN to the peer", async () => {
  const { client, peer } = await connectPair();
  const ended = once(client, 'end');
  client.write('last words');
  sl.shutdown(client, 'both');
  await withTimeout(ended, 2000 * SLOW, "local 'end'");
  const view = await withTimeout(watchPeer(peer).done, 5000 * SLOW, 'peer end');
  assert.deepEqual([view.bytes, view.outcome], [10, 'FIN']);
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

test('closeSocket row 3 aborted by an AbortSignal: abortive now, peer RST', async () => {
  const { client, peer } = await connectPair();
  sl.setLinger(client, true, 10);
  client.write(Buffer.alloc(PAYLOAD));
  const watch = watchPeer(peer, { paused: true });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  const result = await sl.closeSocket(client, { signal: controller.signal });
  assert.deepEqual([result.type, result.waited, result.timedOut], ['abortive', true, false]);
  assert.ok(result.elapsedMs < 1000 * SLOW, `took ${result.elapsedMs} ms`);
  peer.resume();
  assert.equal((await withTimeout(watch.done, 5000 * SLOW, 'peer end')).outcome, 'RST');
});

test('closeSocket on a TLS socket with linger n: graceful, every byte reaches the peer', async () => {
  const { client, peer } = await tlsPair();
  sl.setLinger(client, true, 5);
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 5 });
  let bytes = 0;
  peer.on('data', (chunk) => { bytes += chunk.length; });
  const ended = new Promise((resolve) => { peer.once('end', resolve); peer.once('close', resolve); });
  client.write(Buffer.alloc(512 * 1024));
  const result = await sl.closeSocket(client);
  assert.deepEqual([result.type, result.timedOut], ['graceful', false]);
  await withTimeout(ended, 5000 * SLOW, 'peer end');
  assert.equal(bytes, 512 * 1024);
});

test('abortiveClose: RST at once, also with end() pending and on a TLS socket', async () => {
  const { client, peer } = await connectPair();
  client.write(Buffer.alloc(PAYLOAD));
  client.end(); // the FIN waits behind data the peer is not reading
  const watch = watchPeer(peer, { paused: true });
  const result = await sl.abortiveClose(client);
  assert.deepEqual([result.type, result.waited, result.timedOut], ['abortive', false, false]);
  peer.resume();
  assert.equal((await withTimeout(watch.done, 5000 * SLOW, 'peer end')).outcome, 'RST');

  const t = await tlsPair();
  const tlsWatch = watchPeer(t.peer);
  const tlsResult = await sl.abortiveClose(t.client);
  assert.equal(tlsResult.type, 'abortive');
  const view = await withTimeout(tlsWatch.done, 5000 * SLOW, 'TLS peer end');
  assert.ok(view.outcome === 'RST' || view.error === 'ECONNRESET', JSON.stringify(view));
});

test('gracefulShutdown: FIN, reads until the peer FIN, graceful', async () => {
  const { client, peer } = await connectPair();
  let received = '';
  client.on('data', (chunk) => { received += chunk; });
  client.write('request');
  const closing = sl.gracefulShutdown(client, { timeout: 5000 });
  let got = '';
  peer.on('data', (chunk) => { got += chunk; });
  peer.resume();
  await withTimeout(once(peer, 'end'), 5000 * SLOW, 'peer end');
  peer.end('late reply'); // data after our FIN still reaches the application
  const result = await closing;
  assert.deepEqual([result.type, result.waited, result.timedOut], ['graceful', true, false]);
  assert.equal(got, 'request');
  assert.equal(received, 'late reply');
});

test('gracefulShutdown: a peer that never closes gets an RST at the timeout', async () => {
  const { client, peer } = await connectPair();
  const watch = watchPeer(peer); // reads our FIN, never answers it
  const result = await sl.gracefulShutdown(client, { timeout: 500 });
  assert.deepEqual([result.type, result.waited, result.timedOut], ['abortive', true, true]);
  assert.ok(result.elapsedMs >= 490 && result.elapsedMs < 500 + 1000 * SLOW, `took ${result.elapsedMs} ms`);
  assert.equal((await watch.done).ended, true); // the FIN came first...
  await waitForState(peer, 'CLOSED'); // ...then the RST at the timeout
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

test('errors: ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE', async () => {
  for (const value of [undefined, null, 3, 'socket', {}, { _handle: { fd: 0 } }]) {
    expectThrow(() => sl.setLinger(value, true, 0), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectThrow(() => sl.getLinger(value), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectThrow(() => sl.shutdown(value, 'write'), 'ERR_INVALID_ARG_TYPE', TypeError);
    expectThrow(() => sl.getTcpInfo(value), 'ERR_INVALID_ARG_TYPE', TypeError);
    await expectReject(() => sl.closeSocket(value), 'ERR_INVALID_ARG_TYPE');
    await expectReject(() => sl.abortiveClose(value), 'ERR_INVALID_ARG_TYPE');
    await expectReject(() => sl.gracefulShutdown(value), 'ERR_INVALID_ARG_TYPE');
  }
  const udp = dgram.createSocket('udp4');
  expectThrow(() => sl.setLinger(udp, true, 0), 'ERR_INVALID_ARG_TYPE', TypeError);
  udp.close();
  const { client } = await connectPair();
  for (const how of ['READ', 'send', '', 0, null]) expectThrow(() => sl.shutdown(client, how), 'ERR_INVALID_ARG_VALUE', TypeError);
  for (const seconds of [-1, 1.5, NaN, Infinity, sl.LINGER_MAX_SECONDS + 1]) {
    expectThrow(() => sl.setLinger(client, true, seconds), 'ERR_OUT_OF_RANGE', RangeError);
  }
  expectThrow(() => sl.setLinger(client, 1, 1), 'ERR_INVALID_ARG_TYPE', TypeError);
  assert.deepEqual(sl.getLinger(client), { enabled: false, seconds: 0 }); // nothing changed
});

test('errors: ERR_SOCKET_CLOSED after destroy, from every function', async () => {
  const { client } = await connectPair();
  client.destroy();
  for (const call of [
    () => sl.setLinger(client, true, 0), () => sl.getLinger(client),
    () => sl.shutdown(client, 'both'), () => sl.getTcpInfo(client),
  ]) expectThrow(call, 'ERR_SOCKET_CLOSED', Error);
  for (const call of [
    () => sl.closeSocket(client), () => sl.abortiveClose(client), () => sl.gracefulShutdown(client),
  ]) await expectReject(call, 'ERR_SOCKET_CLOSED');
});

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

test('errors: a pipe is ERR_INVALID_HANDLE_TYPE', async () => {
  const pipePath = process.platform === 'win32'
    ? `\\\\?\\pipe\\socket-linger-${process.pid}`
    : path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'socket-linger-')), 'p.sock');
  const server = track(net.createServer((s) => s.resume()));
  server.listen(pipePath);
  await once(server, 'listening');
  const client = track(net.connect(pipePath));
  await once(client, 'connect');
  for (const call of [
    () => sl.setLinger(client, true, 0), () => sl.getLinger(client),
    () => sl.shutdown(client, 'write'), () => sl.getTcpInfo(client), () => sl.setLinger(server, true, 1),
  ]) expectThrow(call, 'ERR_INVALID_HANDLE_TYPE', TypeError);
});

// ---------------------------------------------------------------- run

main();
