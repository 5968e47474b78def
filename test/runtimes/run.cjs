'use strict';
// The portable check suite under Bun and Deno (scripts/test-runtime.sh): the
// shared behaviour tests (test/portable/tests.cjs, in-process peers judged
// by their kernel state) plus the ones below, whose peer is python3
// (test/runtimes/peer.py: bytes, FIN = recv() returned b'', RST =
// ECONNRESET), so that a runtime's own socket code is no part of the verdict,
// and `socket-linger matrix` run by the same runtime. Plain CommonJS and
// node:assert, which both runtimes provide; ends with "N passed, N failed".
//
//   bun test/runtimes/run.cjs
//   deno run --allow-ffi --allow-net --allow-read --allow-write --allow-env --allow-run --allow-sys test/runtimes/run.cjs

// The addon built here (build/Release), not a prebuild for another platform.
if (process.env.PREBUILDS_ONLY === undefined) process.env.PREBUILDS_ONLY = '';

const assert = require('node:assert/strict');
const net = require('node:net');
const tls = require('node:tls');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { once } = require('node:events');
const h = require('../portable/harness.cjs');
const { ROOT, DIST, sl, SLOW, PAYLOAD, test, skip, main, delay, withTimeout, expectThrow, connectPair } = h;

const versions = process.versions;
const RUNTIME = versions.bun ? `Bun ${versions.bun}` : versions.deno ? `Deno ${versions.deno}` : `Node ${versions.node}`;
const IS_BUN = versions.bun !== undefined;
const IS_DENO = versions.deno !== undefined;

// What the in-process peers cannot judge here, and why (each is covered by a python3-peer test below).
if (IS_BUN) skip('gracefulShutdown: a peer that never closes gets an RST',
  'Bun closes the reset Bun peer at once, so its kernel state cannot be read; python peer: "gracefulShutdown, a peer that never answers"');
// Bun's node:http runs on its own HTTP stack: refused there (tested below).
if (IS_BUN) skip('python client: lingeringClose', 'refused on Bun: ERR_FEATURE_UNAVAILABLE_ON_RUNTIME (see the test of the refusal)');
if (IS_BUN) skip('python client: drainServer', 'refused on Bun: ERR_FEATURE_UNAVAILABLE_ON_RUNTIME (see the test of the refusal)');
if (IS_DENO) skip('honest 5:',
  "Deno fails a pending write with EPIPE at the peer's FIN (its stream, not the kernel), so no lingering close with data unsent survives a half-close");

// ---------------------------------------------------------------- python3 peers

/** Starts test/runtimes/peer.py; resolves with its port and a promise of its verdict. */
async function pythonPeer(...args) {
  const child = spawn('python3', [path.join(__dirname, 'peer.py'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8');
  const port = await withTimeout(new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0 && !resolve.done) { resolve.done = true; resolve(Number(out.slice(0, nl))); }
    });
    child.once('error', reject);
  }), 5000 * SLOW, 'python peer start');
  // A peer that outlives its test is killed, and so fails it.
  const killer = setTimeout(() => child.kill('SIGKILL'), 20000 * SLOW);
  const verdict = new Promise((resolve) => child.once('close', () => {
    clearTimeout(killer);
    const lines = out.trim().split('\n');
    resolve(JSON.parse(lines[lines.length - 1]));
  }));
  return { port, verdict: withTimeout(verdict, 21000 * SLOW, 'python peer verdict') };
}

async function connectTo(port, { secure = false } = {}) {
  const socket = h.track(secure
    ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, allowHalfOpen: true })
    : net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }));
  await once(socket, secure ? 'secureConnect' : 'connect');
  socket.on('error', () => {});
  return socket;
}

const pick = (r, ...keys) => Object.fromEntries(keys.map((k) => [k, r[k]]));

test(`${RUNTIME}: the runtime is detected and every public function is there`, async () => {
  assert.ok(IS_BUN || IS_DENO, 'run this suite under Bun or Deno (scripts/test-runtime.sh)');
  for (const name of ['setLinger', 'getLinger', 'shutdown', 'getTcpInfo', 'closeSocket', 'abortiveClose', 'gracefulShutdown', 'relay']) {
    assert.equal(typeof sl[name], 'function', name);
  }
  const esm = await import(path.join(DIST, 'index.mjs'));
  assert.equal(esm.closeSocket, sl.closeSocket);
});

test('python peer: closeSocket, linger off: graceful, no wait; every byte + FIN', async () => {
  const peer = await pythonPeer();
  const socket = await connectTo(peer.port);
  socket.write(Buffer.alloc(PAYLOAD, 1));
  const result = await sl.closeSocket(socket);
  assert.deepEqual(pick(result, 'type', 'waited'), { type: 'graceful', waited: false });
  assert.deepEqual(await peer.verdict, { bytes: PAYLOAD, outcome: 'FIN' });
});

test('python peer: closeSocket, linger 0: abortive; RST, data lost', async () => {
  const peer = await pythonPeer('--wait-ms', '300');
  const socket = await connectTo(peer.port);
  sl.setLinger(socket, true, 0);
  assert.deepEqual(sl.getLinger(socket), { enabled: true, seconds: 0 });
  socket.write(Buffer.alloc(PAYLOAD, 1));
  const result = await sl.closeSocket(socket);
  assert.deepEqual(pick(result, 'type', 'delivered'), { type: 'abortive', delivered: false });
  const seen = await peer.verdict;
  assert.equal(seen.outcome, 'RST');
  assert.ok(seen.bytes < PAYLOAD, `${seen.bytes} bytes`);
});

test('python peer: closeSocket, linger 5, a reading peer: graceful, waited, delivered; every byte + FIN', async () => {
  const peer = await pythonPeer();
  const socket = await connectTo(peer.port);
  sl.setLinger(socket, true, 5);
  socket.write(Buffer.alloc(PAYLOAD, 1));
  const result = await sl.closeSocket(socket);
  assert.deepEqual(pick(result, 'type', 'waited', 'timedOut', 'delivered'), { type: 'graceful', waited: true, timedOut: false, delivered: true });
  assert.deepEqual(await peer.verdict, { bytes: PAYLOAD, outcome: 'FIN' });
});

test('python peer: closeSocket, linger 1, a peer that does not read: RST at 1 s, timedOut', async () => {
  const peer = await pythonPeer('--wait-ms', '2500');
  const socket = await connectTo(peer.port);
  sl.setLinger(socket, true, 1);
  socket.write(Buffer.alloc(PAYLOAD, 1));
  const result = await sl.closeSocket(socket);
  assert.deepEqual(pick(result, 'type', 'timedOut', 'delivered'), { type: 'abortive', timedOut: true, delivered: false });
  assert.ok(result.elapsedMs >= 990 && result.elapsedMs < 1000 + 1000 * SLOW, `${result.elapsedMs} ms`);
  assert.equal((await peer.verdict).outcome, 'RST');
});

test('python peer: closeSocket of a TLS socket, linger off: every byte + FIN (the TLS verdict can say FIN)', async () => {
  const peer = await pythonPeer('--tls');
  const socket = await connectTo(peer.port, { secure: true });
  // Python's TLS 1.3 session tickets, read first: left unread they would make the close an RST (rightly).
  socket.resume();
  await delay(100);
  socket.write(Buffer.alloc(300_000, 7));
  const result = await sl.closeSocket(socket);
  assert.equal(result.type, 'graceful');
  assert.deepEqual(pick(await peer.verdict, 'bytes', 'outcome'), { bytes: 300_000, outcome: 'FIN' });
});

test('python peer: abortiveClose: RST now (TCP and TLS)', async () => {
  for (const secure of [false, true]) {
    const peer = await pythonPeer(...(secure ? ['--tls'] : []));
    const socket = await connectTo(peer.port, { secure });
    socket.write('some bytes');
    await delay(50);
    const result = await sl.abortiveClose(socket);
    assert.equal(result.type, 'abortive');
    assert.equal((await peer.verdict).outcome, 'RST', secure ? 'TLS' : 'TCP');
  }
});

test('python peer: gracefulShutdown, the peer answers our FIN: graceful, delivered; every byte + FIN', async () => {
  const peer = await pythonPeer('--fin-after-fin');
  const socket = await connectTo(peer.port);
  socket.write(Buffer.alloc(256 * 1024, 2));
  const result = await sl.gracefulShutdown(socket, { timeout: 5000 });
  assert.deepEqual(pick(result, 'type', 'waited', 'timedOut', 'delivered'), { type: 'graceful', waited: true, timedOut: false, delivered: true });
  assert.deepEqual(await peer.verdict, { bytes: 256 * 1024, outcome: 'FIN' });
});

test('python peer: gracefulShutdown, a peer that never answers: FIN first, RST at the timeout', async () => {
  const peer = await pythonPeer('--hold-ms', '1000');
  const socket = await connectTo(peer.port);
  socket.write('request');
  const result = await sl.gracefulShutdown(socket, { timeout: 500 });
  assert.deepEqual(pick(result, 'type', 'timedOut'), { type: 'abortive', timedOut: true });
  // The peer read 'request' and our FIN (recv b''), then the RST.
  assert.deepEqual(await peer.verdict, { bytes: 7, outcome: 'FIN', resetAfter: true });
});

test('python client: accepted sockets that inherit linger 2 from the server close without stalling; every byte + FIN', async () => {
  const server = h.track(net.createServer({ pauseOnConnect: true }));
  sl.setLinger(server, true, 2);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const peer = await pythonPeer('--connect', String(server.address().port), '--wait-ms', '1500');
  const [socket] = await accepted;
  h.track(socket);
  assert.deepEqual(sl.getLinger(socket), { enabled: true, seconds: 2 });
  const written = await h.fillKernelSendQueue(socket, 256 * 1024);
  const { maxStallMs } = await h.measureStall(async () => {
    socket.destroy();
    await once(socket, 'close');
  });
  assert.ok(maxStallMs < h.STALL_LIMIT_MS, `the loop stalled ${maxStallMs.toFixed(0)} ms`);
  assert.deepEqual(await peer.verdict, { bytes: written, outcome: 'FIN' });
});

test('python peer: resetAndDestroy() of a socket with linger 3 (guarded): RST at once, no stall', async () => {
  const peer = await pythonPeer('--wait-ms', '300');
  const socket = await connectTo(peer.port);
  sl.setLinger(socket, true, 3);
  socket.write(Buffer.alloc(PAYLOAD, 6));
  const { maxStallMs } = await h.measureStall(async () => {
    socket.resetAndDestroy();
    await once(socket, 'close');
  });
  assert.ok(maxStallMs < h.STALL_LIMIT_MS, `the loop stalled ${maxStallMs.toFixed(0)} ms`);
  const seen = await peer.verdict;
  assert.equal(seen.outcome, 'RST');
  assert.ok(seen.bytes < PAYLOAD);
});

test('python peer: destroy() of a socket with linger 2 and data queued: no stall; every byte + FIN', async () => {
  const peer = await pythonPeer('--wait-ms', '400');
  const socket = await connectTo(peer.port);
  sl.setLinger(socket, true, 2);
  const written = await h.fillKernelSendQueue(socket, 256 * 1024);
  const { maxStallMs } = await h.measureStall(async () => {
    socket.destroy();
    await once(socket, 'close');
  });
  assert.ok(maxStallMs < h.STALL_LIMIT_MS, `the loop stalled ${maxStallMs.toFixed(0)} ms`);
  assert.deepEqual(await peer.verdict, { bytes: written, outcome: 'FIN' });
});

test("python peer: shutdown(s, 'write'): every byte + FIN, the socket still reads", async () => {
  const peer = await pythonPeer('--fin-after-fin', '--send', '5');
  const socket = await connectTo(peer.port);
  let got = 0;
  socket.on('data', (d) => { got += d.length; });
  socket.write(Buffer.alloc(100_000, 3));
  sl.shutdown(socket, 'write');
  const ended = once(socket, 'end');
  assert.deepEqual(await peer.verdict, { bytes: 100_000, outcome: 'FIN' });
  await withTimeout(ended, 3000 * SLOW, "the peer's FIN");
  assert.equal(got, 5);
});

test("python peer: shutdown(s, 'read'), then the peer sends: the connection resets (SD_RECEIVE)", async () => {
  const peer = await pythonPeer('--send', '100', '--send-delay-ms', '300');
  const socket = await connectTo(peer.port);
  const errored = new Promise((resolve) => socket.once('error', resolve));
  socket.on('end', () => {});
  sl.shutdown(socket, 'read');
  socket.write('still writing');
  const error = await withTimeout(errored, 5000 * SLOW, 'the reset');
  assert.equal(error.code, 'ECONNRESET');
  assert.deepEqual(pick(await peer.verdict, 'bytes', 'outcome'), { bytes: 'still writing'.length, outcome: 'RST' });
});

function curl(...args) {
  return new Promise((resolve) => {
    const child = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('close', (code) => resolve({ code, status: out }));
  });
}

test('python peers: relay(a, b): bytes and FIN pass both ways (half-close), and an RST from b reaches a as an RST', async () => {
  // A sends 200 000 bytes and its FIN; B reads them, then answers with its FIN.
  let pa = await pythonPeer('--send', '200000', '--fin-after-send');
  let pb = await pythonPeer('--fin-after-fin');
  let a = await connectTo(pa.port);
  let b = await connectTo(pb.port);
  let result = await withTimeout(sl.relay(a, b), 10000 * SLOW, 'relay');
  assert.deepEqual(pick(await pb.verdict, 'bytes', 'outcome'), { bytes: 200_000, outcome: 'FIN' });
  assert.deepEqual(pick(await pa.verdict, 'bytes', 'outcome'), { bytes: 0, outcome: 'FIN' });
  assert.deepEqual([result.aToB.bytes, result.aToB.ending, result.bToA.ending], [200_000, "FIN", "FIN"]);
  // B resets after A's FIN: A hears an RST.
  pa = await pythonPeer('--send', '1000', '--fin-after-send');
  pb = await pythonPeer('--rst-after-fin');
  a = await connectTo(pa.port);
  b = await connectTo(pb.port);
  result = await withTimeout(sl.relay(a, b), 10000 * SLOW, 'relay');
  assert.equal((await pb.verdict).outcome, 'FIN');
  assert.equal((await pa.verdict).outcome, 'RST');
  assert.equal(result.by, 'b');
});

/** test/runtimes/upload.py: POSTs `size` bytes, then reads the response. */
function pythonUpload(port, size) {
  return new Promise((resolve) => {
    const child = spawn('python3', [path.join(__dirname, 'upload.py'), String(port), String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.once('close', () => resolve(JSON.parse(out.trim().split('\n').pop())));
  });
}

test('python client: lingeringClose(server): an early 413 with 32 MiB unread reaches it; without, it is reset (control)', async () => {
  const http = require('node:http');
  const { lingeringClose } = require(path.join(DIST, 'http.js'));
  const seen = {};
  for (const lingering of [false, true]) {
    const body = 'x'.repeat(20_000);
    const server = h.track(http.createServer((req, res) => {
      res.writeHead(413, { connection: 'close', 'content-length': body.length });
      res.end(body);
    }));
    const uninstall = lingering ? lingeringClose(server, { lingeringTime: 10_000 }) : () => {};
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    seen[lingering ? 'with' : 'without'] = await withTimeout(pythonUpload(server.address().port, 32 * 1024 * 1024), 30_000 * SLOW, 'upload');
    uninstall();
  }
  assert.notEqual(seen.without.status, 413, `the control: without lingeringClose the response must be lost (${JSON.stringify(seen.without)})`);
  assert.deepEqual(seen.with, { status: 413, bytes: 20_000, error: null });
});

// A keep-alive client not written in JavaScript: one request, then it waits
// for the server to end the idle connection and says how it ended.
const PY_KEEPALIVE = String.raw`
import http.client, json, socket, sys
c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)
c.request('GET', '/')
r = c.getresponse(); body = r.read()
print(json.dumps({'event': 'response', 'status': r.status}), flush=True)
try:
    rest = c.sock.recv(100)
    outcome = 'FIN' if rest == b'' else 'data'
except ConnectionResetError:
    outcome = 'RST'
except socket.timeout:
    outcome = 'open'
print(json.dumps({'event': 'end', 'outcome': outcome}), flush=True)
`;

test('python client: drainServer(server) with an idle keep-alive connection: graceful; the client sees a FIN', async () => {
  const http = require('node:http');
  const { drainServer } = require(path.join(DIST, 'http.js'));
  const server = h.track(http.createServer((req, res) => res.end('ok')));
  server.keepAliveTimeout = 10_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const child = spawn('python3', ['-c', PY_KEEPALIVE, String(server.address().port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const events = [];
  let buffered = '';
  let onEvent;
  child.stdout.on('data', (d) => {
    buffered += d;
    for (let nl; (nl = buffered.indexOf('\n')) >= 0; buffered = buffered.slice(nl + 1)) {
      events.push(JSON.parse(buffered.slice(0, nl)));
      onEvent?.();
    }
  });
  const nthEvent = (n) => new Promise((resolve) => { onEvent = () => events.length >= n && resolve(); onEvent(); });
  await withTimeout(nthEvent(1), 10000 * SLOW, 'the response');
  const result = await withTimeout(drainServer(server, { timeout: 3000 }), 6000 * SLOW, 'drain');
  // The client's own report of how the connection ended is the verdict, not
  // the child's 'close': under Deno, 1 CI run in 2 and 4 local runs in 14
  // timed out waiting for that 'close' after the drain had found its FIN
  // acknowledged (cause not found; the events were not recorded then).
  await withTimeout(nthEvent(2), 10000 * SLOW, 'python client');
  assert.deepEqual(events, [{ event: 'response', status: 200 }, { event: 'end', outcome: 'FIN' }]);
  assert.deepEqual(pick(result, 'connections', 'graceful', 'abortive'), { connections: 1, graceful: 1, abortive: 0 });
  assert.equal(server.listening, false);
});

if (IS_BUN) {
  test("Bun: lingeringClose and drainServer refuse node:http servers with ERR_FEATURE_UNAVAILABLE_ON_RUNTIME, before any effect", async () => {
    const http = require('node:http');
    const { lingeringClose, drainServer } = require(path.join(DIST, 'http.js'));
    const server = h.track(http.createServer((req, res) => res.end('ok')));
    const listeners = server.listenerCount('connection');
    const error = expectThrow(() => lingeringClose(server), 'ERR_FEATURE_UNAVAILABLE_ON_RUNTIME', Error);
    assert.ok(error.message.includes(RUNTIME), error.message);
    assert.equal(server.listenerCount('connection'), listeners);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const rejected = await drainServer(server).then(() => null, (e) => e);
    assert.equal(rejected?.code, 'ERR_FEATURE_UNAVAILABLE_ON_RUNTIME');
    assert.equal(server.listening, true, 'the server was left alone');
    assert.equal((await curl(`http://127.0.0.1:${server.address().port}/`)).status, '200');
  });
}

// scripts/test-runtime.sh deno sets it: a Deno 2.7 from npm, which has no fdForIpc().
const OLD_DENO = process.env.SOCKET_LINGER_OLD_DENO;
if (IS_DENO && OLD_DENO) {
  test('Deno < 2.8: every function refuses with ERR_UNSUPPORTED_RUNTIME naming it', async () => {
    // Deno 2.7 reads dist/*.js as ES modules whatever package.json says, unless told to detect CommonJS.
    const child = spawn(OLD_DENO, ['run', '--allow-ffi', '--allow-net', '--allow-read', '--allow-env', '--unstable-detect-cjs',
      path.join(__dirname, 'old-deno.cjs')], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    await withTimeout(once(child, 'close'), 20000 * SLOW, 'old deno');
    const { version, seen } = JSON.parse(out.trim().split('\n').pop());
    assert.match(version, /^2\.[0-7]\./);
    assert.equal(seen.length, 8);
    for (const line of seen) assert.ok(line.startsWith(`ERR_UNSUPPORTED_RUNTIME: The OS socket cannot be reached on Deno ${version}`), line);
  });
}

test(`socket-linger matrix under ${RUNTIME}: every checked row as documented`, async () => {
  const cli = path.join(DIST, 'cli.js');
  const argv = IS_DENO ? ['run', '--allow-ffi', '--allow-net', '--allow-read', '--allow-env', '--allow-sys', cli, 'matrix', '--json'] : [cli, 'matrix', '--json'];
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const [code] = await withTimeout(once(child, 'close'), 60000 * SLOW, 'matrix');
  const report = JSON.parse(out);
  const checked = report.rows.filter((r) => r.ok !== null);
  assert.equal(code, 0, out.slice(-2000));
  assert.ok(report.ok && checked.length >= 10 && checked.every((r) => r.ok), JSON.stringify(report.rows.filter((r) => r.ok === false)));
});

require('../portable/tests.cjs');

main({ header: `${RUNTIME} ${process.platform}-${process.arch} (node:${versions.node})` });
