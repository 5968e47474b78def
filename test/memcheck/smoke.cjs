// A plain Node script (no test runner) that calls every function of the
// package on real loopback sockets, error paths included, and the native
// binding with hostile arguments: what the memory checkers run
// (scripts/test-valgrind.sh under valgrind, scripts/test-asan.sh under
// ASan/UBSan). Prints "smoke: ok, N checks" and exits 0, or throws.
//
//   node test/memcheck/smoke.cjs
'use strict';
const assert = require('node:assert/strict');
const net = require('node:net');
const tls = require('node:tls');
const { once } = require('node:events');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const lib = require('../../dist/index.js');
const { native } = require('../../dist/native.js');

const { setLinger, getLinger, shutdown, closeSocket, abortiveClose, gracefulShutdown, getTcpInfo } = lib;
let checks = 0;
const check = async (fn) => { await fn(); checks++; };
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

async function pair(opts = {}) {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  if (opts.serverLinger) setLinger(server, ...opts.serverLinger); // before listen: deferred
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect(server.address().port, '127.0.0.1');
  if (opts.pendingLinger) setLinger(client, ...opts.pendingLinger); // not connected yet
  await once(client, 'connect');
  const [peer] = await accepted;
  peer.on('error', () => {});
  client.on('error', () => {});
  return {
    client, peer, server,
    close() { client.destroy(); peer.destroy(); server.close(); },
  };
}

async function expectCode(p, code) {
  try { await (typeof p === 'function' ? p() : p); } catch (e) { assert.equal(e.code, code); checks++; return; }
  assert.fail(`expected ${code}`);
}

async function main() {
  console.log(`smoke: addon ${require('node-gyp-build').path(join(__dirname, '..', '..'))}`);
  // setLinger / getLinger: socket, pending socket, server (inherited by accepted sockets)
  {
    const p = await pair({ serverLinger: [true, 2], pendingLinger: [true, 0] });
    check(() => assert.deepEqual(getLinger(p.client), { enabled: true, seconds: 0 }));
    check(() => assert.deepEqual(getLinger(p.peer), { enabled: true, seconds: 2 }));
    check(() => assert.deepEqual(getLinger(p.server), { enabled: true, seconds: 2 }));
    setLinger(p.client, true, 7);
    check(() => assert.deepEqual(getLinger(p.client), { enabled: true, seconds: 7 }));
    setLinger(p.client, false, 9);
    check(() => assert.deepEqual(getLinger(p.client), { enabled: false, seconds: 0 }));
    setLinger(p.client, true, lib.LINGER_MAX_SECONDS ?? native.maxLingerSeconds);
    check(() => assert.equal(getLinger(p.client).enabled, true));
    const info = getTcpInfo(p.client);
    check(() => assert.equal(info.state, 'ESTABLISHED'));
    check(() => assert.equal(getTcpInfo(p.server).state, 'LISTEN'));
    p.peer.destroy(); // guarded close of an inherited linger 2: must not block
    p.close();
  }
  // shutdown: write, read, both
  for (const how of ['write', 'read', 'both']) {
    const p = await pair();
    p.peer.resume();
    p.client.write('x'.repeat(1000));
    shutdown(p.client, how);
    await delay(20);
    checks++;
    p.close();
  }
  // the close matrix
  for (const [linger, peerReads] of [[[false], true], [[true, 0], true], [[true, 2], true], [[true, 1], false]]) {
    const p = await pair();
    setLinger(p.client, ...linger);
    if (peerReads) p.peer.resume();
    p.client.write(Buffer.alloc(1024 * 1024, 1));
    const r = await closeSocket(p.client);
    check(() => assert.ok(r.type === 'graceful' || r.type === 'abortive'));
    p.close();
  }
  {
    const p = await pair();
    const c = new AbortController();
    setLinger(p.client, true, 10);
    p.client.write(Buffer.alloc(1024 * 1024, 1));
    setTimeout(() => c.abort(), 50);
    await check(async () => assert.equal((await closeSocket(p.client, { signal: c.signal })).type, 'abortive'));
    await once(p.client, 'close');
    p.close();
  }
  {
    const p = await pair();
    await check(async () => assert.equal((await abortiveClose(p.client)).type, 'abortive'));
    await once(p.client, 'close');
    p.close();
  }
  {
    const p = await pair();
    p.peer.resume();
    p.peer.on('end', () => p.peer.end());
    const r = await gracefulShutdown(p.client, { timeout: 5000 });
    check(() => assert.equal(r.type, 'graceful'));
    p.close();
  }
  {
    const p = await pair();
    p.peer.resume();
    const r = await gracefulShutdown(p.client, { timeout: 200 });
    check(() => assert.equal(r.timedOut, true));
    p.close();
  }
  // TLS
  {
    const fixtures = join(__dirname, '..', 'fixtures');
    const server = tls.createServer({ key: readFileSync(join(fixtures, 'key.pem')), cert: readFileSync(join(fixtures, 'cert.pem')) });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'secureConnection');
    const client = tls.connect({ port: server.address().port, host: '127.0.0.1', rejectUnauthorized: false });
    client.on('error', () => {});
    await once(client, 'secureConnect');
    const [peer] = await accepted;
    peer.on('error', () => {});
    peer.resume();
    setLinger(client, true, 3);
    check(() => assert.deepEqual(getLinger(client), { enabled: true, seconds: 3 }));
    check(() => assert.equal(getTcpInfo(client).state, 'ESTABLISHED'));
    client.write('over tls');
    await check(async () => assert.equal((await closeSocket(client)).waited, true));
    await once(client, 'close');
    peer.destroy();
    server.close();
  }
  // errors: closed sockets, bad arguments, a non-TCP handle
  {
    const p = await pair();
    p.client.destroy();
    await once(p.client, 'close');
    for (const fn of [() => getLinger(p.client), () => setLinger(p.client, true, 1), () => shutdown(p.client, 'write'), () => getTcpInfo(p.client)])
      await expectCode(fn, 'ERR_SOCKET_CLOSED');
    for (const fn of [closeSocket, abortiveClose, gracefulShutdown]) await expectCode(fn(p.client), 'ERR_SOCKET_CLOSED');
    await expectCode(() => setLinger(p.peer, true, -1), 'ERR_OUT_OF_RANGE');
    await expectCode(() => setLinger(p.peer, true, 1.5), 'ERR_OUT_OF_RANGE');
    await expectCode(() => shutdown(p.peer, 'sideways'), 'ERR_INVALID_ARG_VALUE');
    await expectCode(() => getLinger({}), 'ERR_INVALID_ARG_TYPE');
    await expectCode(() => getLinger(null), 'ERR_INVALID_ARG_TYPE');
    await expectCode(gracefulShutdown(p.peer, { timeout: -5 }), 'ERR_OUT_OF_RANGE');
    p.close();
  }
  // The native binding itself, with arguments the TypeScript layer never
  // passes: it must refuse or fail cleanly, never touch memory it does not own.
  {
    // (Large values are truncated to int: these land on -1, never on a real descriptor.)
    const bad = [undefined, null, 'x', {}, -1, NaN, 2 ** 53 - 1, -(2 ** 40) - 1];
    for (const fd of bad) {
      for (const call of [
        () => native.setLinger(fd, true, 1),
        () => native.getLinger(fd, new Int32Array(2)),
        () => native.shutdownWrite(fd),
        () => native.tcpInfo(fd, new Float64Array(3)),
        () => native.readableBytes(fd),
        () => native.pendingError(fd),
      ]) { try { call(); } catch { /* a TypeError is fine */ } checks++; }
    }
    const arrays = [undefined, new Int32Array(0), new Int32Array(1), new Float64Array(2), new Uint8Array(64),
      new Int32Array(new ArrayBuffer(16), 12, 1), new Float64Array(new ArrayBuffer(32), 8, 2)];
    for (const out of arrays) {
      try { native.getLinger(0, out); } catch { /* refused */ }
      try { native.tcpInfo(0, out); } catch { /* refused */ }
      checks++;
    }
    for (const secs of [-1, 2 ** 31, NaN, Infinity, '5']) { try { native.setLinger(-1, true, secs); } catch { /* refused */ } checks++; }
    if (typeof native.unacknowledged === 'function') {
      const socks = Float64Array.of(-1, NaN, 0.5, 1e6, 2 ** 31 - 1);
      for (const out of [new Float64Array(5), new Float64Array(1), new Float64Array(0), new Int8Array(5), undefined]) {
        try { native.unacknowledged(socks, new Float64Array(5), out); } catch { /* refused */ }
        try { native.unacknowledged(socks, out, new Float64Array(5)); } catch { /* refused */ }
        checks++;
      }
    }
    if (typeof native.unacknowledged === 'function') {
      // Doubles outside int's range: converting them to int would be undefined
      // behaviour; the glue must refuse them (-2, unreadable), never truncate them.
      const out = new Float64Array(3);
      native.unacknowledged(Float64Array.of(1e20, Infinity, 2 ** 31 + 3), new Float64Array(3), out);
      if ([...out].some((v) => v !== -2)) throw new Error(`hostile socket values were used: ${[...out]}`);
      checks++;
    }
    for (const sock of [2 ** 32, 2 ** 32 + 1, 2 ** 53, NaN, 0.5, Infinity]) {
      let refused = false;
      try { native.setLinger(sock, true, 9); } catch (error) { refused = error instanceof RangeError; }
      if (!refused) throw new Error(`socket value ${sock} was not refused`);
      checks++;
    }
    try { native.findSocket('127.0.0.1', 1, '127.0.0.1', 2); } catch { /* fine */ }
    try { native.findSocket(1, 'a'); } catch { /* refused */ }
    checks += 2;
  }
  await delay(50);
  console.log(`smoke: ok, ${checks} checks`);
}

main().then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });
