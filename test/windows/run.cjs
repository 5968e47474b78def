'use strict';
// Behaviour tests for the win32-x64 build, run by a real node.exe (here under
// Wine: scripts/test-windows.sh). Plain CommonJS and node:assert, no test
// framework, real loopback sockets; the harness (registry, runner, loopback
// pairs, the peer's verdict by its kernel state, the stall monitor) is
// test/portable/harness.cjs, shared with test/arm64/run.cjs. It loads the
// compiled package (dist/) with the prebuild in prebuilds/win32-x64/, prints
// one line per test and ends with "N passed, N failed"; exits 1 on failure.
//
// Wine maps Winsock onto Linux sockets: it shows that the Windows code path
// builds, loads and runs, not how a Windows kernel behaves. Lines starting
// with "# wine:" note where Wine was seen to differ from Windows' documented
// behaviour.
process.env.PREBUILDS_ONLY = '1'; // never the host's build/Release (Linux ELF)

const assert = require('node:assert/strict');
const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const { once } = require('node:events');
const {
  ROOT, DIST, sl, test, skip, note, main, delay, withTimeout, expectThrow,
  track, connectPair, stateOf, watchPeer, waitForState, fillUntilBlocked, measureStall,
} = require('../portable/harness.cjs');

const nodeGypBuild = require(path.join(ROOT, 'node_modules', 'node-gyp-build'));
const UNDER_WINE = Boolean(process.env.WINEPREFIX || process.env.SOCKET_LINGER_WINE);

function wineNote(message) {
  if (UNDER_WINE) console.log(`# wine: ${message}`);
}

// ---------------------------------------------------------------- tests

test('loads the win32-x64 prebuild and finds sockets although handle.fd is -1', async () => {
  assert.equal(process.platform, 'win32');
  const file = nodeGypBuild.path(path.dirname(DIST));
  assert.match(file, /prebuilds[\\/]win32-x64[\\/]socket-linger\.node$/);
  assert.equal(sl.LINGER_MAX_SECONDS, 65535);
  const { client, peer, server } = await connectPair({ keepListening: true });
  assert.equal(client._handle.fd, -1, 'Node hides the SOCKET on Windows');
  assert.deepEqual(sl.getLinger(client), { enabled: false, seconds: 0 });
  assert.deepEqual(sl.getLinger(peer), { enabled: false, seconds: 0 });
  assert.deepEqual(sl.getLinger(server), { enabled: false, seconds: 0 });
});

test('the addon binds to the host process, not to a file named node.exe', async () => {
  // A copy of node.exe under another name (as Electron or a packaged app
  // would be) must load the prebuild: its Node-API and libuv imports are
  // resolved from GetModuleHandle(NULL), never by loading "node.exe".
  const { execFileSync } = require('node:child_process');
  const os = require('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sl-host-'));
  const host = path.join(dir, 'renamed-host.exe');
  fs.copyFileSync(process.execPath, host);
  const script = `
    process.env.PREBUILDS_ONLY = '1';
    const net = require('node:net');
    const sl = require(${JSON.stringify(path.join(DIST, 'index.js'))});
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const c = net.connect(server.address().port, '127.0.0.1', () => {
        sl.setLinger(c, true, 42);
        process.stdout.write(JSON.stringify({ exe: process.execPath, linger: sl.getLinger(c) }));
        c.destroy(); server.close();
      });
    });`;
  try {
    const out = execFileSync(host, ['-e', script], { encoding: 'utf8', timeout: 15000 });
    const result = JSON.parse(out);
    assert.match(result.exe, /renamed-host\.exe$/);
    assert.deepEqual(result.linger, { enabled: true, seconds: 42 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('setLinger/getLinger round trips, 0 .. 65535', async () => {
  const { client } = await connectPair();
  for (const seconds of [0, 1, 30, 32767, 65535]) {
    sl.setLinger(client, true, seconds);
    assert.deepEqual(sl.getLinger(client), { enabled: true, seconds });
  }
  sl.setLinger(client, false, 5);
  assert.deepEqual(sl.getLinger(client), { enabled: false, seconds: 0 }, 'seconds ignored when off');
  sl.setLinger(client, true);
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 0 }, 'seconds defaults to 0');
});

test('setLinger range and type checks: 65536 is ERR_OUT_OF_RANGE', async () => {
  const { client } = await connectPair();
  sl.setLinger(client, true, 9);
  for (const bad of [65536, -1, 1.5, NaN, Infinity, 2 ** 31])
    expectThrow(() => sl.setLinger(client, true, bad), 'ERR_OUT_OF_RANGE', RangeError);
  expectThrow(() => sl.setLinger(client, true, '5'), 'ERR_INVALID_ARG_TYPE', TypeError);
  expectThrow(() => sl.setLinger(client, 1, 5), 'ERR_INVALID_ARG_TYPE', TypeError);
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 9 }, 'a refused value changes nothing');
});

test('linger 0 + destroy(): the peer gets an RST (ECONNRESET)', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  sl.setLinger(client, true, 0);
  client.destroy();
  await withTimeout(done, 5000, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
  if (view.error !== 'ECONNRESET') wineNote(`RST reported to the Node peer as ${view.error ?? "'end'"}; kernel state ${view.stateAtEnd}`);
});

test("shutdown(s, 'read'): data arriving later resets the connection", async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  client.resume();
  let clientError = null;
  client.on('error', (error) => { clientError = error; });
  sl.shutdown(client, 'read');
  await delay(100);
  peer.write('late data');
  await withTimeout(done, 5000, 'peer sees the reset');
  await delay(50);
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
  assert.equal(client.destroyed, true);
  assert.ok(clientError, 'the socket reports the reset');
  if (clientError.code !== 'ECONNRESET')
    wineNote(`after SD_RECEIVE late data made the read fail with ${clientError.code} (${clientError.message}), not the library's ECONNRESET`);
  assert.equal(clientError.code, 'ECONNRESET', `${clientError.code}: ${clientError.message}`);
});

test('net.Server: listening socket linger is inherited by accepted sockets', async () => {
  const { client, peer, server } = await connectPair({
    keepListening: true,
    serverSetup: (s) => s.once('listening', () => sl.setLinger(s, true, 7)),
  });
  assert.deepEqual(sl.getLinger(server), { enabled: true, seconds: 7 });
  assert.deepEqual(sl.getLinger(peer), { enabled: true, seconds: 7 }, 'inherited through AcceptEx');
  assert.deepEqual(sl.getLinger(client), { enabled: false, seconds: 0 });
  assert.equal(sl.getTcpInfo(server).state, 'LISTEN');
});

test('net.Server: setLinger before listen() is applied on listening', async () => {
  const server = track(net.createServer());
  sl.setLinger(server, true, 4);
  assert.deepEqual(sl.getLinger(server), { enabled: true, seconds: 4 });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  assert.deepEqual(sl.getLinger(server), { enabled: true, seconds: 4 });
});

test('IPv6 loopback: linger, tcp info, RST', async () => {
  const { client, peer } = await connectPair({ host: '::1' });
  assert.equal(client.address().family, 'IPv6');
  sl.setLinger(client, true, 21);
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 21 });
  assert.deepEqual(sl.getLinger(peer), { enabled: false, seconds: 0 });
  assert.equal(sl.getTcpInfo(client).state, 'ESTABLISHED');
  const { view, done } = watchPeer(peer);
  sl.setLinger(client, true, 0);
  client.destroy();
  await withTimeout(done, 5000, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
});

test('getTcpInfo: LISTEN, ESTABLISHED, CLOSE_WAIT after a FIN, FIN_WAIT_2 after shutdown', async () => {
  const { client, peer, server } = await connectPair({ keepListening: true });
  assert.equal(sl.getTcpInfo(server).state, 'LISTEN');
  const info = sl.getTcpInfo(client);
  assert.equal(info.state, 'ESTABLISHED');
  for (const key of ['unsentBytes', 'unackedBytes'])
    assert.ok(info[key] === null || (Number.isInteger(info[key]) && info[key] >= 0), `${key}: ${info[key]}`);
  if (info.unackedBytes === null) wineNote('SIO_TCP_INFO unsupported: state from the TCP table, byte counts null');
  sl.shutdown(peer, 'write');
  await waitForState(client, 'CLOSE_WAIT');
  await waitForState(peer, 'FIN_WAIT_2');
});

test('lookups next to a reset accepted socket: neither it nor its listener is mistaken', async () => {
  // A reset accepted socket has no peer any more and shares its local address
  // with the listener. Nothing here is looked up before the reset, so no
  // remembered SOCKET helps: the lookup must tell the two apart, or fail.
  const { client, peer, server } = await connectPair({ keepListening: true });
  peer.on('error', () => {});
  peer.resume();
  sl.setLinger(client, true, 0);
  client.destroy();
  await delay(300);
  assert.equal(stateOf(peer), 'CLOSED');
  assert.deepEqual(sl.getLinger(peer), { enabled: false, seconds: 0 });
  sl.setLinger(server, true, 9);
  assert.deepEqual(sl.getLinger(server), { enabled: true, seconds: 9 });
  assert.deepEqual(sl.getLinger(peer), { enabled: false, seconds: 0 });
});

test('closeSocket, linger off (row 1): settles at once; peer gets every byte, then FIN', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer, { paused: true });
  const payload = Buffer.alloc(2 << 20, 3);
  client.write(payload);
  const result = await sl.closeSocket(client);
  assert.equal(result.type, 'graceful');
  assert.equal(result.waited, false);
  assert.equal(result.timedOut, false);
  assert.ok(result.elapsedMs < 500, `elapsed ${result.elapsedMs}`);
  peer.resume();
  await withTimeout(done, 10000, 'peer end');
  assert.equal(view.bytes, payload.length);
  assert.equal(view.outcome, 'FIN', JSON.stringify(view));
});

test('closeSocket, linger 0 (row 2): abortive at once; peer gets an RST', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer, { paused: true });
  client.write(Buffer.alloc(4 << 20, 4));
  sl.setLinger(client, true, 0);
  const result = await sl.closeSocket(client);
  assert.equal(result.type, 'abortive');
  assert.equal(result.waited, false);
  assert.equal(result.timedOut, false);
  peer.resume();
  await withTimeout(done, 5000, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
  assert.ok(view.bytes < 4 << 20, 'unsent data discarded');
});

test('closeSocket, linger n (row 3), peer reading: waits, graceful; every byte + FIN', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  const payload = Buffer.alloc(1 << 20, 5);
  client.write(payload);
  sl.setLinger(client, true, 5);
  const { result, maxStallMs } = await measureStall(() => sl.closeSocket(client));
  note(`longest event-loop gap during closeSocket: ${Math.round(maxStallMs)} ms`);
  assert.equal(result.type, 'graceful');
  assert.equal(result.waited, true);
  assert.equal(result.timedOut, false);
  assert.ok(maxStallMs < 500, `event loop stalled ${maxStallMs} ms`);
  await withTimeout(done, 5000, 'peer end');
  assert.equal(view.bytes, payload.length);
  assert.equal(view.outcome, 'FIN', JSON.stringify(view));
});

test('closeSocket, linger n (row 3), peer not reading: RST at n s, timedOut', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer, { paused: true });
  const written = await fillUntilBlocked(client);
  sl.setLinger(client, true, 1);
  const { result, maxStallMs } = await measureStall(() => sl.closeSocket(client));
  assert.equal(result.type, 'abortive');
  assert.equal(result.waited, true);
  assert.equal(result.timedOut, true);
  assert.ok(result.elapsedMs >= 900 && result.elapsedMs < 3000, `elapsed ${result.elapsedMs}`);
  assert.ok(maxStallMs < 500, `event loop stalled ${maxStallMs} ms`);
  peer.resume();
  await withTimeout(done, 10000, 'peer end');
  assert.equal(view.outcome, 'RST', JSON.stringify(view));
  assert.ok(view.bytes < written, `peer got ${view.bytes} of ${written}`);
});

test('a close outside the library with linger n > 0 never blocks the loop', async () => {
  const { client, peer } = await connectPair();
  const { view, done } = watchPeer(peer);
  client.write(Buffer.alloc(256 * 1024, 6));
  sl.setLinger(client, true, 5);
  const { maxStallMs } = await measureStall(async () => {
    client.destroy();
    await once(client, 'close');
  });
  assert.ok(maxStallMs < 500, `event loop stalled ${maxStallMs} ms`);
  await withTimeout(done, 5000, 'peer end');
  assert.equal(view.outcome, 'FIN', JSON.stringify(view));
});

test('accepted sockets that inherited linger n > 0 close without blocking; the peer gets a FIN', async () => {
  const { client, peer } = await connectPair({
    serverSetup: (s) => s.once('listening', () => sl.setLinger(s, true, 5)),
  });
  assert.deepEqual(sl.getLinger(peer), { enabled: true, seconds: 5 });
  const { view, done } = watchPeer(client);
  peer.write(Buffer.alloc(128 * 1024, 7));
  const { maxStallMs } = await measureStall(async () => {
    peer.destroy();
    await once(peer, 'close');
  });
  note(`longest event-loop gap while closing: ${Math.round(maxStallMs)} ms`);
  assert.ok(maxStallMs < 500, `event loop stalled ${maxStallMs} ms`);
  await withTimeout(done, 5000, 'client end');
  assert.equal(view.bytes, 128 * 1024);
  assert.equal(view.outcome, 'FIN', JSON.stringify(view));
});

// ---------------------------------------------------------------- shared

// Wine 8.0 completes a pending overlapped send successfully when the peer's
// FIN arrives, though part of it was never sent (4 MiB to a paused peer:
// ~270 KB lost, no library involved): the socket never lingers with data
// unsent in Node's buffer, the state this test needs.
if (UNDER_WINE) skip('honest 5:', "Wine completes a pending send at the peer's FIN (bytes lost): no lingering close with data unsent to test");

require('../portable/tests.cjs'); // the tests both runners run

// ---------------------------------------------------------------- run

main({ header: `node ${process.version} ${process.platform}-${process.arch}${UNDER_WINE ? ' under Wine' : ''}` });
