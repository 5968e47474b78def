'use strict';
// Behaviour tests run by both in-process runners, test/windows/run.cjs (a real
// node.exe under Wine) and test/arm64/run.cjs (a real arm64 node under qemu,
// or this platform's node): nothing here depends on the platform. Requiring
// this file registers them with the harness (test/portable/harness.cjs); each
// runner adds its platform's own tests before and after.

const assert = require('node:assert/strict');
const net = require('node:net');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { once } = require('node:events');
const { Worker } = require('node:worker_threads');
const {
  DIST, sl, SLOW, PAYLOAD, test, delay, withTimeout, expectThrow, expectReject,
  track, connectPair, tlsPair, stateOf, watchPeer, waitForState, fillUntilBlocked,
} = require('./harness.cjs');

// ---------------------------------------------------------------- linger

test('setLinger before connect is applied on connect', async () => {
  const server = track(net.createServer({ pauseOnConnect: true }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  // On a socket that is connecting...
  const connecting = track(net.connect(server.address().port, '127.0.0.1'));
  sl.setLinger(connecting, true, 12);
  assert.deepEqual(sl.getLinger(connecting), { enabled: true, seconds: 12 });
  await once(connecting, 'connect');
  assert.deepEqual(sl.getLinger(connecting), { enabled: true, seconds: 12 });
  // ...and on one whose connect() was not called yet.
  const client = track(new net.Socket());
  sl.setLinger(client, true, 4);
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 4 }); // pending setting
  client.connect(server.address().port, '127.0.0.1');
  await once(client, 'connect');
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 4 });
});

test('control: plain end() (linger off): the peer gets every byte and a FIN', async () => {
  let { client, peer } = await connectPair();
  let watch = watchPeer(peer);
  client.write(Buffer.alloc(300_000, 1));
  client.end();
  let view = await withTimeout(watch.done, 5000 * SLOW, 'peer end');
  assert.equal(view.bytes, 300_000);
  assert.equal(view.outcome, 'FIN', JSON.stringify(view));
  // More than the kernel's buffers hold, to a peer that reads only later.
  ({ client, peer } = await connectPair());
  client.write(Buffer.alloc(PAYLOAD));
  watch = watchPeer(peer, { paused: true });
  client.end();
  await delay(50);
  peer.resume();
  view = await withTimeout(watch.done, 10000 * SLOW, 'peer end');
  assert.deepEqual([view.bytes, view.outcome], [PAYLOAD, 'FIN']);
});

// ---------------------------------------------------------------- shutdown

test("shutdown(s, 'write'): the peer gets every byte and a FIN; the socket still reads", async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  client.write(Buffer.alloc(1 << 20, 2));
  sl.shutdown(client, 'write');
  await withTimeout(done, 5000 * SLOW, 'peer end');
  assert.equal(view.bytes, 1 << 20);
  assert.equal(view.outcome, 'FIN', JSON.stringify(view));
  await waitForState(client, 'FIN_WAIT_2');
  const got = once(client, 'data');
  peer.write('still reading');
  assert.equal(String((await withTimeout(got, 3000 * SLOW, 'data after shutdown write'))[0]), 'still reading');
  sl.shutdown(client, 'write'); // again: nothing to do
  client.on('error', () => {});
  const [writeError] = await new Promise((resolve) => client.write('x', (...args) => resolve(args)));
  assert.equal(writeError?.code, 'ERR_STREAM_WRITE_AFTER_END');
});

test("shutdown(s, 'write') with nothing buffered shuts down at once: FIN_WAIT_2 now", async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  sl.shutdown(client, 'write');
  await withTimeout(done, 5000 * SLOW, 'peer end');
  assert.equal(view.outcome, 'FIN');
  assert.equal(client.writableEnded, true);
  await waitForState(client, 'FIN_WAIT_2');
  await waitForState(peer, 'CLOSE_WAIT');
});

test("shutdown(s, 'read'): 'end' at once, writes still reach the peer", async () => {
  const { client, peer } = await connectPair();
  const { view } = watchPeer(peer);
  const got = once(peer, 'data');
  const ended = once(client, 'end');
  sl.shutdown(client, 'read');
  await withTimeout(ended, 2000 * SLOW, "'end' after shutdown read");
  await delay(100);
  assert.equal(client.destroyed, false);
  client.write('after read shutdown');
  assert.equal(String((await withTimeout(got, 3000 * SLOW, 'peer data'))[0]), 'after read shutdown');
  await delay(300);
  assert.equal(view.bytes, 'after read shutdown'.length);
  assert.equal(stateOf(client), 'ESTABLISHED');
});

test("shutdown(s, 'read'): the peer's FIN afterwards is no reset; the write side still ends cleanly", async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  let clientError = null;
  client.on('error', (error) => { clientError = error; });
  sl.shutdown(client, 'read');
  await delay(100);
  peer.end();
  await delay(300);
  assert.equal(clientError, null, String(clientError));
  assert.equal(client.destroyed, false);
  client.end('after the peer FIN');
  await withTimeout(done, 5000 * SLOW, 'peer end');
  // Both sides have sent a FIN: the peer is in TIME_WAIT (Windows) or CLOSED
  // (Linux moves an open socket out of TIME_WAIT), so judge by bytes and errors.
  assert.equal(view.bytes, 'after the peer FIN'.length);
  assert.equal(view.ended, true);
  assert.equal(view.error, null);
  await delay(100);
  assert.equal(clientError, null, String(clientError));
});

test("shutdown(s, 'read') with data already queued resets at once", async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  client.pause();
  peer.write('queued before the shutdown');
  await delay(200);
  const failed = once(client, 'error');
  sl.shutdown(client, 'read');
  const [error] = await withTimeout(failed, 3000 * SLOW, 'client error');
  assert.equal(error.code, 'ECONNRESET');
  await withTimeout(done, 5000 * SLOW, 'peer sees the reset');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
});

test("shutdown(s, 'both'): 'end' locally, FIN to the peer", async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  client.write('last words');
  const ended = once(client, 'end');
  sl.shutdown(client, 'both');
  await withTimeout(ended, 2000 * SLOW, "local 'end'");
  await withTimeout(done, 5000 * SLOW, 'peer end');
  assert.equal(view.bytes, 'last words'.length);
  assert.equal(view.outcome, 'FIN', JSON.stringify(view));
});

// ---------------------------------------------------------------- TLS, addresses, lookups

test('TLS socket: linger round trip, RST on destroy, shutdown write', async () => {
  let pair = await tlsPair();
  sl.setLinger(pair.client, true, 3);
  assert.deepEqual(sl.getLinger(pair.client), { enabled: true, seconds: 3 });
  assert.equal(sl.getTcpInfo(pair.client).state, 'ESTABLISHED');
  sl.setLinger(pair.client, true, 0);
  let watched = watchPeer(pair.peer);
  pair.client.destroy();
  await withTimeout(watched.done, 5000 * SLOW, 'TLS peer end');
  assert.equal(watched.view.outcome, 'RST', JSON.stringify(watched.view));

  pair = await tlsPair();
  watched = watchPeer(pair.peer);
  pair.client.write('secret');
  sl.shutdown(pair.client, 'write');
  await withTimeout(watched.done, 5000 * SLOW, 'TLS peer end');
  assert.equal(watched.view.bytes, 'secret'.length);
  assert.equal(watched.view.outcome, 'FIN', JSON.stringify(watched.view));
});

test('dual-stack server on :: with an IPv4 client (v4-mapped addresses)', async () => {
  const { client, peer, server } = await connectPair({ host: '::', connectHost: '127.0.0.1', keepListening: true });
  assert.match(peer.localAddress, /^::ffff:127\.0\.0\.1$/);
  sl.setLinger(peer, true, 5);
  assert.deepEqual(sl.getLinger(peer), { enabled: true, seconds: 5 });
  assert.deepEqual(sl.getLinger(client), { enabled: false, seconds: 0 });
  sl.setLinger(server, true, 2);
  assert.deepEqual(sl.getLinger(server), { enabled: true, seconds: 2 });
  assert.deepEqual(sl.getLinger(peer), { enabled: true, seconds: 5 });
});

test('many open handles: every lookup picks its own socket', async () => {
  const pairs = [];
  for (let i = 0; i < 40; i++) pairs.push(await connectPair({ keepListening: i % 2 === 0 }));
  pairs.forEach(({ client, peer }, i) => {
    sl.setLinger(client, true, 100 + i);
    sl.setLinger(peer, true, 1000 + i);
  });
  pairs.forEach(({ client, peer, server }, i) => {
    assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 100 + i });
    assert.deepEqual(sl.getLinger(peer), { enabled: true, seconds: 1000 + i });
    if (server.listening) assert.deepEqual(sl.getLinger(server), { enabled: false, seconds: 0 });
  });
  // Destroyed ones never reach a live socket.
  pairs.slice(0, 10).forEach(({ client }) => client.destroy());
  pairs.slice(0, 10).forEach(({ client }) => expectThrow(() => sl.getLinger(client), 'ERR_SOCKET_CLOSED'));
  pairs.slice(10).forEach(({ client }, i) =>
    assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 110 + i }));
});

test('worker_threads: each thread finds the sockets of its own loop', async () => {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const net = require('node:net');
    const { once } = require('node:events');
    const sl = require(workerData.dist);
    (async () => {
      const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
      server.listen(0, '127.0.0.1'); await once(server, 'listening');
      const accepted = once(server, 'connection');
      const client = net.connect(server.address().port, '127.0.0.1'); await once(client, 'connect');
      const [peer] = await accepted;
      server.close(); // see connectPair()
      sl.setLinger(client, true, 77);
      const linger = sl.getLinger(client);
      const peerLinger = sl.getLinger(peer);
      let outcome = 'open';
      peer.on('error', (e) => { outcome = e.code; });
      peer.on('end', () => { outcome = sl.getTcpInfo(peer).state; });
      peer.resume();
      sl.setLinger(client, true, 0); client.destroy();
      await new Promise((r) => setTimeout(r, 300));
      peer.destroy();
      parentPort.postMessage({ linger, peerLinger, outcome });
    })().catch((e) => parentPort.postMessage({ error: String(e.stack) }));
  `;
  const main = await connectPair();
  sl.setLinger(main.client, true, 11);
  const workers = [1, 2].map(() => new Worker(code, { eval: true, workerData: { dist: path.join(DIST, 'index.js') } }));
  const results = await withTimeout(Promise.all(workers.map((w) => once(w, 'message').then(([m]) => m))), 15000 * SLOW, 'workers');
  await Promise.all(workers.map((w) => w.terminate()));
  for (const r of results) {
    assert.equal(r.error, undefined, r.error);
    assert.deepEqual(r.linger, { enabled: true, seconds: 77 });
    assert.deepEqual(r.peerLinger, { enabled: false, seconds: 0 });
    assert.ok(r.outcome === 'ECONNRESET' || r.outcome === 'CLOSED', `peer outcome ${r.outcome}`);
  }
  assert.deepEqual(sl.getLinger(main.client), { enabled: true, seconds: 11 });
});

// ---------------------------------------------------------------- close matrix

test('closeSocket, linger n, aborted by an AbortSignal: abortive now, peer RST', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer, { paused: true });
  await fillUntilBlocked(client);
  sl.setLinger(client, true, 30);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  const result = await sl.closeSocket(client, { signal: controller.signal });
  assert.deepEqual([result.type, result.waited, result.timedOut], ['abortive', true, false]);
  assert.ok(result.elapsedMs < 1000 * SLOW, `elapsed ${result.elapsedMs}`);
  peer.resume();
  await withTimeout(done, 10000 * SLOW, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
});

test('closeSocket, linger n on a TLS socket: graceful, the peer gets every byte', async () => {
  const { client, peer } = await tlsPair();
  const { view, done } = watchPeer(peer);
  sl.setLinger(client, true, 5);
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 5 });
  client.write(Buffer.alloc(512 * 1024, 8));
  const result = await sl.closeSocket(client);
  assert.deepEqual([result.type, result.waited, result.timedOut], ['graceful', true, false]);
  await withTimeout(done, 5000 * SLOW, 'TLS peer end');
  assert.equal(view.bytes, 512 * 1024);
  assert.notEqual(view.outcome, 'RST', JSON.stringify(view));
});

test('abortiveClose: RST at once, also with end() pending and on a TLS socket', async () => {
  // end() with a little data, the peer reading: the RST overtakes or follows the FIN.
  let pair = await connectPair();
  let watched = watchPeer(pair.peer);
  pair.client.end('bye');
  let result = await sl.abortiveClose(pair.client);
  assert.deepEqual([result.type, result.waited, result.timedOut], ['abortive', false, false]);
  await withTimeout(watched.done, 5000 * SLOW, 'peer end');
  assert.notEqual(watched.view.outcome, 'open');
  // The FIN waits behind data the peer is not reading: only the RST arrives.
  pair = await connectPair();
  pair.client.write(Buffer.alloc(PAYLOAD));
  pair.client.end();
  watched = watchPeer(pair.peer, { paused: true });
  result = await sl.abortiveClose(pair.client);
  assert.deepEqual([result.type, result.waited, result.timedOut], ['abortive', false, false]);
  pair.peer.resume();
  await withTimeout(watched.done, 5000 * SLOW, 'peer end');
  assert.equal(watched.view.outcome, 'RST', JSON.stringify(watched.view));
  // TLS (Node's resetAndDestroy() refuses TLS sockets).
  pair = await tlsPair();
  watched = watchPeer(pair.peer);
  result = await sl.abortiveClose(pair.client);
  assert.equal(result.type, 'abortive');
  await withTimeout(watched.done, 5000 * SLOW, 'TLS peer end');
  assert.equal(watched.view.outcome, 'RST', JSON.stringify(watched.view));
});

test('gracefulShutdown: FIN, reads until the peer FIN, graceful', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  let got = '';
  peer.on('data', (chunk) => { got += chunk; });
  let received = '';
  client.on('data', (d) => { received += d; });
  client.write('request');
  const closing = sl.gracefulShutdown(client, { timeout: 5000 });
  await withTimeout(done, 5000 * SLOW, 'peer end');
  assert.equal(view.outcome, 'FIN', JSON.stringify(view));
  peer.end('late reply'); // data after our FIN still reaches the application
  const result = await withTimeout(closing, 6000 * SLOW, 'gracefulShutdown');
  assert.deepEqual([result.type, result.waited, result.timedOut], ['graceful', true, false]);
  assert.equal(received, 'late reply');
  assert.equal(view.bytes, 'request'.length);
  assert.equal(got, 'request');
});

test('gracefulShutdown: a peer that never closes gets an RST at the timeout', async () => {
  const { client, peer } = await connectPair();
  const { done } = watchPeer(peer); // reads our FIN, never answers it
  const result = await sl.gracefulShutdown(client, { timeout: 500 });
  assert.deepEqual([result.type, result.waited, result.timedOut], ['abortive', true, true]);
  assert.ok(result.elapsedMs >= 490 && result.elapsedMs < 500 + 1000 * SLOW, `took ${result.elapsedMs} ms`);
  assert.equal((await withTimeout(done, 5000 * SLOW, 'peer end')).ended, true); // the FIN came first...
  await delay(200);
  assert.equal(stateOf(peer), 'CLOSED'); // ...then the RST at the timeout
});

// ---------------------------------------------------------------- errors

test('errors: ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE, ENOTCONN while connecting', async () => {
  const udp = dgram.createSocket('udp4');
  try {
    for (const bad of [undefined, null, 3, 42, 'socket', {}, { _handle: { fd: 0 } }, udp]) {
      expectThrow(() => sl.setLinger(bad, true, 0), 'ERR_INVALID_ARG_TYPE', TypeError);
      expectThrow(() => sl.setLinger(bad, true, 1), 'ERR_INVALID_ARG_TYPE', TypeError);
      expectThrow(() => sl.getLinger(bad), 'ERR_INVALID_ARG_TYPE', TypeError);
      expectThrow(() => sl.shutdown(bad, 'write'), 'ERR_INVALID_ARG_TYPE', TypeError);
      expectThrow(() => sl.getTcpInfo(bad), 'ERR_INVALID_ARG_TYPE', TypeError);
      await expectReject(() => sl.closeSocket(bad), 'ERR_INVALID_ARG_TYPE');
      await expectReject(() => sl.abortiveClose(bad), 'ERR_INVALID_ARG_TYPE');
      await expectReject(() => sl.gracefulShutdown(bad), 'ERR_INVALID_ARG_TYPE');
    }
  } finally {
    udp.close();
  }
  const { client } = await connectPair();
  for (const how of ['sideways', 'READ', 'send', '', 0, null])
    expectThrow(() => sl.shutdown(client, how), 'ERR_INVALID_ARG_VALUE', TypeError);
  for (const seconds of [-1, 1.5, NaN, Infinity, sl.LINGER_MAX_SECONDS + 1])
    expectThrow(() => sl.setLinger(client, true, seconds), 'ERR_OUT_OF_RANGE', RangeError);
  expectThrow(() => sl.setLinger(client, 1, 1), 'ERR_INVALID_ARG_TYPE', TypeError);
  assert.deepEqual(sl.getLinger(client), { enabled: false, seconds: 0 }); // nothing changed
  await expectReject(() => sl.gracefulShutdown(client, { timeout: -1 }), 'ERR_OUT_OF_RANGE');
  const server = track(net.createServer());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const connecting = track(net.connect(server.address().port, '127.0.0.1'));
  expectThrow(() => sl.shutdown(connecting, 'write'), 'ENOTCONN');
});

test('errors: ERR_SOCKET_CLOSED after destroy, from every function', async () => {
  const { client } = await connectPair();
  client.destroy();
  for (const call of [
    () => sl.setLinger(client, true, 0), () => sl.setLinger(client, true, 1), () => sl.getLinger(client),
    () => sl.shutdown(client, 'write'), () => sl.shutdown(client, 'both'), () => sl.getTcpInfo(client),
  ]) expectThrow(call, 'ERR_SOCKET_CLOSED', Error);
  for (const call of [
    () => sl.closeSocket(client), () => sl.abortiveClose(client), () => sl.gracefulShutdown(client),
  ]) await expectReject(call, 'ERR_SOCKET_CLOSED');
});

test('errors: a pipe (named pipe on Windows) is ERR_INVALID_HANDLE_TYPE', async () => {
  const pipePath = process.platform === 'win32'
    ? `\\\\.\\pipe\\socket-linger-test-${process.pid}`
    : path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'socket-linger-')), 'p.sock');
  const server = track(net.createServer((s) => track(s).resume()));
  server.listen(pipePath);
  await once(server, 'listening');
  const client = track(net.connect(pipePath));
  await withTimeout(once(client, 'connect'), 5000 * SLOW, 'pipe connect');
  for (const call of [
    () => sl.setLinger(client, true, 0), () => sl.setLinger(client, true, 1), () => sl.getLinger(client),
    () => sl.shutdown(client, 'write'), () => sl.getTcpInfo(client), () => sl.setLinger(server, true, 1),
  ]) expectThrow(call, 'ERR_INVALID_HANDLE_TYPE', TypeError);
});

// ---------------------------------------------------------------- honest close
//
// Ported from test/honest-close.test.ts (whose peer is a python3 process):
// here the peer is the other end of a loopback pair, judged by its kernel
// state and byte counts (watchPeer), and each CloseResult is compared with
// what that peer saw. A runner that cannot show one on its platform skips it
// with the harness's skip(), before requiring this file, giving the reason.

const { native } = require(path.join(DIST, 'native.js'));
const { descriptorOf, tcpHandleOf } = require(path.join(DIST, 'handle.js'));

/** Bytes sitting unread in this socket's kernel receive queue (FIONREAD). */
function unreadBytes(socket) {
  return native.readableBytes(descriptorOf(tcpHandleOf(socket)));
}

async function waitUnread(socket, n, timeoutMs = 2000 * SLOW) {
  const deadline = Date.now() + timeoutMs;
  while (unreadBytes(socket) < n) {
    if (Date.now() > deadline) throw new Error(`only ${unreadBytes(socket)} of ${n} bytes arrived unread`);
    await delay(5);
  }
}

/** The promise's value, or 'pending' if it has not settled within `ms`. */
function within(promise, ms) {
  let timer;
  return Promise.race([promise, new Promise((resolve) => { timer = setTimeout(resolve, ms, 'pending'); })])
    .finally(() => clearTimeout(timer));
}

function settled(value, boundMs) {
  assert.notEqual(value, 'pending', `the close had not settled ${boundMs} ms after the event that must end it`);
  return value;
}

/** The CloseResult type matching a peer outcome from watchPeer. */
const typeFor = (outcome) => (outcome === 'RST' ? 'abortive' : outcome === 'FIN' ? 'graceful' : outcome);

const pick = (r, ...keys) => Object.fromEntries(keys.map((k) => [k, r[k]]));

test('honest 1: closeSocket, linger off, bytes unread in its receive queue: abortive now, delivered false; the peer gets an RST', async () => {
  // The closing socket is the accepted end: pauseOnConnect, it never reads.
  const { client: other, peer: socket } = await connectPair();
  const { view, done } = watchPeer(other);
  other.write(Buffer.alloc(10 * 1024, 0x61));
  await waitUnread(socket, 10 * 1024);
  socket.write('response');
  const result = settled(await within(sl.closeSocket(socket), 500 * SLOW), 500 * SLOW);
  await withTimeout(done, 5000 * SLOW, 'peer end');
  assert.deepEqual(pick(result, 'type', 'waited', 'delivered'), { type: 'abortive', waited: false, delivered: false });
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
  assert.equal(typeFor(view.outcome), result.type);
});

test('honest 2a: linger 5, destroy() during the wait: settles soon (not at 5 s), delivered false, type = what the peer saw', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer, { paused: true });
  sl.setLinger(client, true, 5);
  client.write(Buffer.alloc(PAYLOAD, 0x62));
  const pending = sl.closeSocket(client);
  setTimeout(() => client.destroy(), 300);
  const result = settled(await within(pending, 1500 * SLOW), 1500 * SLOW);
  peer.resume(); // reads only now: what reaches it was queued in the kernel
  await withTimeout(done, 10000 * SLOW, 'peer end');
  assert.ok(view.bytes < PAYLOAD, `peer got ${view.bytes} of ${PAYLOAD}`);
  assert.ok(result.elapsedMs < 1500 * SLOW, `elapsed ${result.elapsedMs}`);
  // The guard switched the kernel linger off before the close: a FIN.
  assert.equal(view.outcome, 'FIN', JSON.stringify(view));
  assert.deepEqual(pick(result, 'type', 'delivered'), { type: typeFor(view.outcome), delivered: false });
});

test('honest 4a: a second caller\'s signal ends the shared linger-2 wait: both abortive by ~100 ms, peer RST', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer, { paused: true });
  sl.setLinger(client, true, 2);
  client.write(Buffer.alloc(PAYLOAD));
  const controller = new AbortController();
  const p1 = sl.closeSocket(client);
  const p2 = sl.closeSocket(client, { signal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  const both = await within(Promise.all([p1, p2]), 1000 * SLOW);
  const [first, second] = settled(both, 1000 * SLOW);
  assert.deepEqual([first.type, second.type], ['abortive', 'abortive']);
  assert.deepEqual([first.timedOut, second.timedOut], [false, false]);
  assert.deepEqual([first.delivered, second.delivered], [false, false]);
  peer.resume();
  await withTimeout(done, 10000 * SLOW, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
  assert.ok(view.bytes < PAYLOAD);
});

test('honest 4b: gracefulShutdown({ timeout: 100 }) as second caller ends a linger-2 wait: both abortive, timedOut; peer RST', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer, { paused: true });
  sl.setLinger(client, true, 2);
  client.write(Buffer.alloc(PAYLOAD));
  const p1 = sl.closeSocket(client);
  const p2 = sl.gracefulShutdown(client, { timeout: 100 });
  const both = await within(Promise.all([p1, p2]), 1000 * SLOW);
  const [first, second] = settled(both, 1000 * SLOW);
  assert.deepEqual([first, second].map((r) => [r.type, r.timedOut]), [['abortive', true], ['abortive', true]]);
  assert.ok(second.elapsedMs < 1000 * SLOW, `elapsed ${second.elapsedMs}`);
  peer.resume();
  await withTimeout(done, 10000 * SLOW, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
});

test('honest 5: the peer sends FIN, then RST, during a lingering close: settles at the reset, abortive, not timed out', async () => {
  const { client, peer } = await connectPair();
  const { view } = watchPeer(peer, { paused: true });
  peer.on('error', () => {});
  sl.setLinger(client, true, 5);
  client.write(Buffer.alloc(PAYLOAD));
  const pending = sl.closeSocket(client);
  await delay(200);
  peer.end(); // its FIN
  await waitForState(client, 'CLOSE_WAIT');
  await delay(100);
  sl.setLinger(peer, true, 0);
  peer.destroy(); // its RST
  const resetAt = performance.now();
  const result = settled(await within(pending, 1500 * SLOW), 1500 * SLOW);
  assert.ok(performance.now() - resetAt < 1500 * SLOW);
  assert.deepEqual(pick(result, 'type', 'timedOut', 'delivered'), { type: 'abortive', timedOut: false, delivered: false });
  assert.ok(view.bytes < PAYLOAD, 'the peer did not read everything: nothing could be delivered');
});

for (const linger of [3, null]) {
  const how = linger === null ? 'linger off' : `linger ${linger}`;
  test(`honest 6: shutdown(s, 'read') then closeSocket (${how}): the peer's late data gets an RST`, async () => {
    const { client, peer } = await connectPair();
    const { view, done } = watchPeer(peer, { paused: true });
    client.on('error', () => {});
    client.write(Buffer.alloc(PAYLOAD)); // to a peer not reading: the close cannot finish meanwhile
    sl.shutdown(client, 'read');
    if (linger !== null) sl.setLinger(client, true, linger);
    const pending = sl.closeSocket(client);
    if (linger === null) await pending;
    await delay(100);
    peer.write(Buffer.alloc(100, 0x6c)); // late data
    const sentAt = performance.now();
    await delay(100);
    peer.resume();
    await withTimeout(done, 1500 * SLOW, 'the peer sees the reset');
    assert.equal(view.outcome, 'RST', JSON.stringify(view));
    assert.notEqual(view.stateAtEnd, 'CLOSE_WAIT');
    assert.ok(view.bytes < PAYLOAD);
    if (linger !== null) {
      const result = settled(await within(pending, Math.max(0, 1500 * SLOW - (performance.now() - sentAt))), 1500 * SLOW);
      assert.deepEqual(pick(result, 'type', 'timedOut', 'delivered'), { type: 'abortive', timedOut: false, delivered: false });
    }
  });
}

test('honest 7: closeSocket 20 times (linger off): no listener growth, no warning, one type; a later gracefulShutdown does not wait', async () => {
  const warnings = [];
  const onWarning = (w) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    const { client, peer } = await connectPair();
    const { view, done } = watchPeer(peer, { paused: true });
    const SIZE = 1024 * 1024;
    client.write(Buffer.alloc(SIZE, 0x63));
    const calls = [sl.closeSocket(client)];
    const count = () => ({ error: client.listenerCount('error'), finish: client.listenerCount('finish'), close: client.listenerCount('close') });
    const afterOne = count();
    for (let i = 1; i < 20; i++) calls.push(sl.closeSocket(client));
    assert.deepEqual(count(), afterOne);
    const graceful = sl.gracefulShutdown(client);
    peer.resume();
    const all = settled(await within(Promise.all([...calls, graceful]), 3000 * SLOW), 3000 * SLOW);
    await withTimeout(done, 5000 * SLOW, 'peer end');
    await delay(50); // warnings are emitted on a later tick
    const g = all.pop();
    assert.deepEqual(warnings, []);
    assert.deepEqual([...new Set(all.map((r) => r.type))], ['graceful']);
    assert.equal(g.waited, false, 'gracefulShutdown joined a close that does not wait');
    assert.deepEqual([view.bytes, view.outcome], [SIZE, 'FIN'], JSON.stringify(view));
  } finally {
    process.off('warning', onWarning);
  }
});

for (const [what, written, resetAfterMs] of [['PAYLOAD written to a non-reading peer', PAYLOAD, 100], ["nothing buffered (libuv's shutdown pending)", 0, 0]]) {
  test(`honest 11: resetAndDestroy() during gracefulShutdown, ${what}: peer RST, 'close', no EINVAL, settles abortive`, async () => {
    const { client, peer } = await connectPair();
    const { view, done } = watchPeer(peer, { paused: true });
    const errors = [];
    client.on('error', (e) => errors.push(e.code ?? e.message));
    let closedAt = -1;
    client.on('close', () => { closedAt = performance.now(); });
    if (written > 0) client.write(Buffer.alloc(written));
    const pending = sl.gracefulShutdown(client);
    if (resetAfterMs > 0) await delay(resetAfterMs);
    const resetAt = performance.now();
    let threw = null;
    try { client.resetAndDestroy(); } catch (e) { threw = e.code ?? String(e); }
    const result = await within(pending, 1500 * SLOW);
    await delay(50);
    peer.resume();
    await withTimeout(done, 5000 * SLOW, 'peer end');
    assert.deepEqual(
      { threw, errors, closed: closedAt >= 0 && closedAt - resetAt < 1500 * SLOW, peer: view.outcome },
      { threw: null, errors: [], closed: true, peer: 'RST' }, JSON.stringify(view));
    assert.equal(settled(result, 1500 * SLOW).type, typeFor(view.outcome));
  });
}

// delivered in the matrix rows, each against what the peer saw.

test('delivered: linger n, a reading peer: graceful, waited, delivered true; every byte + FIN', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  sl.setLinger(client, true, 3);
  client.write(Buffer.alloc(1024 * 1024));
  const result = await sl.closeSocket(client);
  await withTimeout(done, 5000 * SLOW, 'peer end');
  assert.deepEqual([view.bytes, view.outcome], [1024 * 1024, 'FIN'], JSON.stringify(view));
  assert.deepEqual(pick(result, 'type', 'waited', 'delivered'), { type: 'graceful', waited: true, delivered: true });
});

test('delivered: linger n timeout: abortive, timedOut, delivered false; the peer gets an RST', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer, { paused: true });
  sl.setLinger(client, true, 1);
  client.write(Buffer.alloc(PAYLOAD));
  const result = await sl.closeSocket(client);
  peer.resume();
  await withTimeout(done, 10000 * SLOW, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
  assert.ok(view.bytes < PAYLOAD);
  assert.deepEqual(pick(result, 'type', 'timedOut', 'delivered'), { type: 'abortive', timedOut: true, delivered: false });
});

test('delivered: linger off: graceful, delivered null (settles before its background flush ends); every byte + FIN', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  client.write(Buffer.alloc(1024 * 1024));
  const result = await sl.closeSocket(client);
  await withTimeout(done, 5000 * SLOW, 'peer end');
  assert.deepEqual([view.bytes, view.outcome], [1024 * 1024, 'FIN'], JSON.stringify(view));
  assert.deepEqual(pick(result, 'type', 'waited', 'delivered'), { type: 'graceful', waited: false, delivered: null });
});

test('delivered: linger 0: abortive, delivered false; the peer gets an RST', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer, { paused: true });
  sl.setLinger(client, true, 0);
  client.write(Buffer.alloc(PAYLOAD));
  const result = await sl.closeSocket(client);
  peer.resume();
  await withTimeout(done, 5000 * SLOW, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
  assert.deepEqual(pick(result, 'type', 'delivered'), { type: 'abortive', delivered: false });
});

test('delivered: gracefulShutdown completing: graceful, delivered true; every byte + FIN, no RST after', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  client.write(Buffer.alloc(256 * 1024));
  const closing = sl.gracefulShutdown(client, { timeout: 3000 * SLOW });
  await withTimeout(done, 5000 * SLOW, 'peer end');
  assert.deepEqual([view.bytes, view.outcome], [256 * 1024, 'FIN'], JSON.stringify(view));
  peer.end(); // the peer's FIN completes the sequence
  const result = await withTimeout(closing, 4000 * SLOW, 'gracefulShutdown');
  assert.deepEqual(pick(result, 'type', 'timedOut', 'delivered'), { type: 'graceful', timedOut: false, delivered: true });
  await delay(100);
  assert.equal(view.error, null, 'no reset after the FINs');
});
