// How lingering closes learn of delivery and resets (src/poller.ts): on
// Linux the kernel wakes them (one epoll instance the loop watches), so a
// waiting socket is checked when it changed, not every 10 ms; the poll stays
// the fallback and can be forced. Judged by the peer (python3: bytes, FIN,
// RST), by the kernel (the epoll registrations in /proc/self/fdinfo) and by
// how often the addon was asked (native.unacknowledged), never by timing
// beyond loose bounds.
import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { closeSocket, gracefulShutdown, setLinger } from '../dist/index.js';
import { native } from '../dist/native.js';
import { deliveryWatch, forcePolling, whenDelivered, watchesUnderWay as testCopyWatches } from '../dist/poller.js';
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as net from 'node:net';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { spawn } from 'node:child_process';
import { acceptPython, delay, fillKernelSendQueue, until } from './helpers';

const execFileAsync = promisify(execFile);
const { startNeverReads } = createRequire(__filename)('./fixtures/never-reads.cjs') as {
  startNeverReads(): { peer: import('node:child_process').ChildProcess; line(prefix: string): Promise<string> };
};
// The poller the closes use: the one dist/index.js requires (vitest loads its
// own copy of a module the test imports).
const { watchesUnderWay, deliveryWatch: packageDeliveryWatch } = createRequire(__filename)('../dist/poller.js') as typeof import('../dist/poller.js');

const linux = process.platform === 'linux';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  forcePolling(undefined);
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/**
 * Counts the sockets native.unacknowledged() is asked about from now on;
 * `.calls()`: how often it was called (once per poll tick, or per wake-up);
 * `.most()`: the most sockets asked about in one call.
 */
function countChecks() {
  const original = native.unacknowledged;
  let asked = 0;
  let calls = 0;
  let most = 0;
  native.unacknowledged = (socks, last, out) => {
    calls++;
    asked += socks.length;
    most = Math.max(most, socks.length);
    original(socks, last, out);
  };
  cleanups.push(() => { native.unacknowledged = original; });
  return Object.assign(() => asked, { calls: () => calls, most: () => most });
}

/** This process's epoll instances (libuv's own, and each copy's wake-ups): their descriptors. */
function epollFds(): string[] {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try { return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[eventpoll]'; } catch { return false; }
  });
}

/** A listener that records what it was told. */
function recording(told: string[], name = '') {
  return { onDelivered: () => { told.push(`${name}delivered`); }, onReset: () => { told.push(`${name}reset`); } };
}

/** Our edge-triggered registrations (EPOLLOUT|EPOLLRDHUP|EPOLLET, and the EPOLLERR|EPOLLHUP the kernel adds) in this process's epoll instances: their target fds. */
function registeredFds(): number[] {
  const fds: number[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target = '';
    try { target = readlinkSync(`/proc/self/fd/${fd}`); } catch { continue; }
    if (target !== 'anon_inode:[eventpoll]') continue;
    let info = '';
    try { info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'); } catch { continue; }
    for (const match of info.matchAll(/^tfd:\s+(\d+)\s+events:\s+([0-9a-f]+)/gm))
      if (parseInt(match[2], 16) === 0x8000201c) fds.push(Number(match[1]));
  }
  return fds;
}

const fdOf = (s: unknown) => (s as { _handle: { fd: number } })._handle.fd;

describe.skipIf(!linux)('kernel wake-ups (Linux)', () => {
  it('are what a close uses here; SOCKET_LINGER_POLL=1 selects the poll', async () => {
    expect(deliveryWatch()).toBe('wakeups');
    const code = "console.log(require(process.argv[1]).deliveryWatch())";
    // A Node child keeps this process's environment (under ASan: the sanitizer runtime the addon needs).
    const run = async (value: string) => (await execFileAsync(process.execPath, ['-e', code, require.resolve('../dist/poller.js')], {
      env: { ...process.env, SOCKET_LINGER_POLL: value },
    })).stdout.trim();
    expect(await run('1')).toBe('poll');
    expect(await run('0')).toBe('wakeups');
  });

  it('a python3 peer that starts reading late: delivered, noticed at the FIN\'s ACK, the socket checked a few times, not every 10 ms', async () => {
    const { socket, py, close } = await acceptPython({ paused: true, timeoutMs: 10_000 });
    cleanups.push(close);
    setLinger(socket, true, 5);
    const written = await fillKernelSendQueue(socket); // all in the kernel: the close waits on the peer
    const checks = countChecks();
    const closing = closeSocket(socket);
    await delay(600); // waiting: the peer has not read
    expect(registeredFds()).toContain(fdOf(socket));
    expect(watchesUnderWay(), 'watches while the close waits').toBe(1);
    const checksWhileIdle = checks();
    py.command('read');
    const result = await closing;
    const settledAt = performance.now();
    const fin = await py.next('fin');
    expect(fin.bytes).toBe(written);
    expect(result).toMatchObject({ type: 'graceful', waited: true, timedOut: false, delivered: true });
    // The poll would have asked ~15-60 times in 600 ms; the kernel woke it once (registration).
    expect(checksWhileIdle).toBeLessThanOrEqual(2);
    expect(checks()).toBeLessThanOrEqual(10);
    expect(registeredFds(), 'registration dropped').toEqual([]);
    expect(watchesUnderWay(), 'watches left once it settled').toBe(0);
    void settledAt;
  });

  it('a reset during the wait (the peer\'s FIN first, so Node reads no more) is noticed by the wake-up, long before the deadline', async () => {
    const { socket, py, close } = await acceptPython({ paused: true, timeoutMs: 10_000 });
    cleanups.push(close);
    const written = await fillKernelSendQueue(socket); // all in the kernel: the close waits on the peer
    py.command('shutwr');
    await py.next('shutwr');
    const checks = countChecks();
    const start = performance.now();
    const closing = gracefulShutdown(socket, { timeout: 8000 });
    await delay(400);
    const before = checks();
    py.command('reset');
    const result = await closing;
    expect(result).toMatchObject({ type: 'abortive', timedOut: false, delivered: false });
    expect(performance.now() - start).toBeLessThan(4000); // loose: the deadline is 8 s
    expect(before).toBeLessThanOrEqual(2);
    expect(registeredFds()).toEqual([]);
    expect(watchesUnderWay(), 'watches left once it settled').toBe(0);
  });

  it('someone else destroys the socket mid-wait: the registration goes before the descriptor does, no stale wake-up reaches the next socket on that number', async () => {
    const first = await acceptPython({ paused: true, timeoutMs: 10_000 });
    cleanups.push(first.close);
    setLinger(first.socket, true, 5);
    await fillKernelSendQueue(first.socket);
    const closing = closeSocket(first.socket);
    await delay(200);
    const fd = fdOf(first.socket);
    expect(registeredFds()).toEqual([fd]);
    first.socket.destroy();
    expect(registeredFds()).toEqual([]);
    expect((await closing).delivered).not.toBe(true); // cut short: not all acknowledged
    // The next connection may well get the same number; its close is its own.
    const second = await acceptPython({ timeoutMs: 10_000 });
    cleanups.push(second.close);
    setLinger(second.socket, true, 5);
    second.socket.write(Buffer.alloc(64 * 1024, 1));
    const result = await closeSocket(second.socket);
    expect(result).toMatchObject({ type: 'graceful', delivered: true });
    expect((await second.py.next('fin')).bytes).toBe(64 * 1024);
    expect(registeredFds()).toEqual([]);
  });

  it('a watch stopped twice does nothing the second time: a later watch of the same socket stays registered and is told of the delivery', async () => {
    const { socket, py, close } = await acceptPython({ paused: true, timeoutMs: 10_000 });
    cleanups.push(close);
    const written = await fillKernelSendQueue(socket); // all in the kernel: nothing is delivered until the peer reads
    socket.end();
    const told: string[] = [];
    const first = whenDelivered(socket, recording(told, 'first '));
    expect(registeredFds()).toEqual([fdOf(socket)]);
    first.stop();
    expect(registeredFds()).toEqual([]);
    const second = whenDelivered(socket, recording(told, 'second '));
    cleanups.push(() => second.stop());
    first.stop(); // again: the registration now is the second watch's
    expect(registeredFds(), 'the second watch\'s registration').toEqual([fdOf(socket)]);
    py.command('read');
    expect((await py.next('fin')).bytes).toBe(written);
    await until(() => told.length > 0, 5000, () => 'the second watch told');
    expect(told).toEqual(['second delivered']);
    expect(registeredFds()).toEqual([]);
    expect(testCopyWatches()).toBe(0);
  });

  it('a socket already closed when its watch starts: nothing is registered, the poll looks at it on every tick (a count it cannot read is no sign of idleness) and finds nothing to tell', async () => {
    const { socket, close } = await acceptPython({ timeoutMs: 10_000 });
    cleanups.push(close);
    socket.destroy();
    await once(socket, 'close');
    const checks = countChecks();
    const told: string[] = [];
    const watching = whenDelivered(socket, recording(told));
    cleanups.push(() => watching.stop());
    expect(registeredFds(), 'registrations for a closed socket').toEqual([]);
    await until(() => checks.calls() >= 30, 5000, () => `30 poll ticks (${checks.calls()} so far)`);
    // Once on each tick (an idle socket would be every 4th past its 10th).
    expect(checks(), `sockets asked about in ${checks.calls()} ticks`).toBe(checks.calls());
    expect(registeredFds()).toEqual([]);
    expect(told, 'told about a closed socket').toEqual([]);
    watching.stop();
    expect(testCopyWatches()).toBe(0);
  });

  it('a socket on descriptor 0 (a child whose stdin is the connection, inetd-style) is registered like any other, and unregistered when its watch stops', async () => {
    const { socket, close } = await acceptPython({ paused: true, timeoutMs: 10_000 });
    cleanups.push(close);
    const code = String.raw`
      const fs = require('fs'), net = require('net');
      const { whenDelivered } = require(process.argv[1]);
      const registered = () => {
        const fds = [];
        for (const fd of fs.readdirSync('/proc/self/fd')) {
          let info = '';
          try { if (fs.readlinkSync('/proc/self/fd/' + fd) !== 'anon_inode:[eventpoll]') continue; info = fs.readFileSync('/proc/self/fdinfo/' + fd, 'utf8'); } catch { continue; }
          for (const m of info.matchAll(/^tfd:\s+(\d+)\s+events:\s+([0-9a-f]+)/gm)) if (parseInt(m[2], 16) === 0x8000201c) fds.push(Number(m[1]));
        }
        return fds;
      };
      const s = new net.Socket({ fd: 0, readable: true, writable: true });
      const watching = whenDelivered(s, { onDelivered() {}, onReset() {} });
      const during = registered();
      watching.stop();
      console.log(JSON.stringify({ fd: s._handle.fd, during, after: registered() }));
      s.destroy();`;
    const child = spawn(process.execPath, ['-e', code, require.resolve('../dist/poller.js')], { stdio: [socket, 'pipe', 'inherit'] });
    cleanups.push(() => child.kill());
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => { out += text; });
    const [exitCode] = (await once(child, 'exit')) as [number];
    expect(exitCode).toBe(0);
    expect(JSON.parse(out)).toEqual({ fd: 0, during: [0], after: [] });
  });

  it('one epoll instance for every close: three lingering closes open none of their own', async () => {
    expect(packageDeliveryWatch()).toBe('wakeups'); // the package's wake-ups, set up once
    const before = epollFds().length;
    for (let i = 0; i < 3; i++) {
      const { socket, py, close } = await acceptPython({ timeoutMs: 10_000 });
      cleanups.push(close);
      setLinger(socket, true, 5);
      socket.write(Buffer.alloc(64 * 1024, 1));
      expect(await closeSocket(socket)).toMatchObject({ type: 'graceful', delivered: true });
      expect((await py.next('fin')).bytes).toBe(64 * 1024);
    }
    expect(epollFds().length, 'epoll instances after three closes').toBe(before);
  });

  it('where the wake-ups cannot be set up (no descriptor left for their epoll instance), closes poll', async () => {
    const code = String.raw`
      const fs = require('fs');
      const { deliveryWatch } = require(process.argv[1]);
      const held = [];
      try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch (error) { if (error.code !== 'EMFILE') throw error; }
      const first = deliveryWatch();
      for (const fd of held) fs.closeSync(fd);
      console.log(first, deliveryWatch());`;
    // A low descriptor limit, so that filling it is quick.
    const { stdout } = await execFileAsync('/bin/sh', ['-c', 'ulimit -n 256 && exec "$0" -e "$1" "$2"', process.execPath, code, require.resolve('../dist/poller.js')], { timeout: 10_000 });
    // Decided once: 'poll' also after descriptors are free again.
    expect(stdout.trim()).toBe('poll poll');
  });
});

describe('the poll, forced (the fallback of macOS, Windows and other runtimes)', () => {
  it('a python3 peer that starts reading late: delivered, found by polling', async () => {
    forcePolling(true);
    expect(deliveryWatch()).toBe('poll');
    const { socket, py, close } = await acceptPython({ paused: true, timeoutMs: 10_000 });
    cleanups.push(close);
    setLinger(socket, true, 5);
    const written = await fillKernelSendQueue(socket); // all in the kernel: the close waits on the peer
    const checks = countChecks();
    const closing = closeSocket(socket);
    await delay(600);
    if (linux) expect(registeredFds()).toEqual([]);
    expect(checks(), 'polled').toBeGreaterThanOrEqual(5);
    expect(checks.most(), 'the one waiting socket, asked about once a tick').toBe(1);
    expect(watchesUnderWay(), 'watches while the close waits').toBe(1);
    py.command('read');
    expect(await closing).toMatchObject({ type: 'graceful', timedOut: false, delivered: true });
    expect((await py.next('fin')).bytes).toBe(written);
    expect(watchesUnderWay(), 'watches left once it settled').toBe(0);
  });

  it('a reset during the wait is found by polling too', async () => {
    forcePolling(true);
    const { socket, py, close } = await acceptPython({ paused: true, timeoutMs: 10_000 });
    cleanups.push(close);
    const written = await fillKernelSendQueue(socket); // all in the kernel: the close waits on the peer
    py.command('shutwr');
    await py.next('shutwr');
    const start = performance.now();
    const closing = gracefulShutdown(socket, { timeout: 8000 });
    await delay(300);
    py.command('reset');
    expect(await closing).toMatchObject({ type: 'abortive', timedOut: false, delivered: false });
    expect(performance.now() - start).toBeLessThan(4000);
    expect(watchesUnderWay(), 'watches left once it settled').toBe(0);
  });

  it('two peers that do not read: past 10 ticks without progress each socket is checked every 4th tick only; once both settle the timer stops', async () => {
    forcePolling(true);
    const peers = [await acceptPython({ paused: true, timeoutMs: 10_000 }), await acceptPython({ paused: true, timeoutMs: 10_000 })];
    for (const peer of peers) cleanups.push(peer.close);
    const written: number[] = [];
    for (const { socket } of peers) {
      setLinger(socket, true, 8);
      written.push(await fillKernelSendQueue(socket)); // all in the kernel: nothing moves until the peer reads
    }
    // Every tick asks the addon once (about the sockets due, maybe none).
    const checks = countChecks();
    const ticks = checks.calls;
    const closings = peers.map(({ socket }) => closeSocket(socket));
    // Counted in ticks, not time (a loaded machine ticks less often).
    const untilTicks = (n: number) => until(() => ticks() >= n, 10_000, () => `${n} poll ticks (${ticks()} so far)`);
    await untilTicks(60); // well past 10 ticks: both idle now
    const [ticks0, checked0] = [ticks(), checks()];
    await untilTicks(ticks0 + 60);
    const idleTicks = ticks() - ticks0;
    const idleChecks = checks() - checked0;
    console.log(`the poll, two idle sockets: ${idleChecks} checks in ${idleTicks} ticks`);
    // Each socket on every 4th tick (by count), give or take one at either
    // end; plus up to 10 ticks of checks each time a zero-window probe lets
    // a few more bytes in (measured here once, ~260 ms in; twice allowed).
    // Checked every tick it would be 2 x 60.
    expect(idleChecks, `checks in ${idleTicks} ticks`).toBeGreaterThanOrEqual(2 * (Math.floor(idleTicks / 4) - 1));
    expect(idleChecks, `checks in ${idleTicks} ticks`).toBeLessThanOrEqual(2 * (Math.ceil(idleTicks / 4) + 1 + 20));
    for (const { py } of peers) py.command('read');
    for (const [i, closing] of closings.entries()) {
      expect(await closing).toMatchObject({ type: 'graceful', timedOut: false, delivered: true });
      expect((await peers[i].py.next('fin')).bytes).toBe(written[i]);
    }
    const ticksAtEnd = ticks();
    await delay(150);
    expect(ticks() - ticksAtEnd, 'ticks once nothing waits').toBe(0);
    expect(watchesUnderWay()).toBe(0);
  });

  it('progress makes an idle socket due every tick again: a stalled peer that reads some gets its socket checked on each of the next ticks, then every 4th again', async () => {
    forcePolling(true);
    // A fixed receive buffer (no autotuning once it reads): reading some opens the window by about that much.
    const { socket, py, close } = await acceptPython({ paused: true, rcvbuf: 64 * 1024, timeoutMs: 15_000 });
    cleanups.push(close);
    setLinger(socket, true, 10);
    const written = await fillKernelSendQueue(socket, 1024 * 1024); // far more than the peer reads below: the close still waits
    const checks = countChecks();
    const ticks = checks.calls;
    const closing = closeSocket(socket);
    const untilTicks = (n: number) => until(() => ticks() >= n, 10_000, () => `${n} poll ticks (${ticks()} so far)`);
    await untilTicks(40); // well past 10 ticks without progress: idle
    const [ticks0, checked0] = [ticks(), checks()];
    py.command('readsome 65536'); // frees window: the count moves
    expect((await py.next('readsome')).n).toBe(65536);
    await untilTicks(ticks0 + 40);
    const [window, checked] = [ticks() - ticks0, checks() - checked0];
    console.log(`the poll, a stalled peer that read some: ${checked} checks in the next ${window} ticks`);
    // Idle throughout, it would be every 4th tick: ~window / 4. The movement
    // makes it due on the next 10 ticks (7.5 more than idle), so allow 4.
    expect(checked, `checks in the ${window} ticks after the peer read some`).toBeGreaterThanOrEqual(Math.ceil(window / 4) + 4);
    py.command('read');
    expect(await closing).toMatchObject({ type: 'graceful', timedOut: false, delivered: true });
    expect((await py.next('fin')).bytes).toBe(written);
  });

  it('past 1,000 waiting sockets each still gets its turn: behind 1,000 idle ones (a peer that never reads), the 1,001st is checked and its delivery found', async () => {
    forcePolling(true);
    const COUNT = 1000;
    const { peer, line } = startNeverReads();
    cleanups.push(() => peer.kill());
    const port = Number(await line(''));
    const stalled: net.Socket[] = [];
    for (let i = 0; i < COUNT; i += 250) {
      stalled.push(...await Promise.all(Array.from({ length: 250 }, () => {
        const socket = net.connect(port, '127.0.0.1');
        return once(socket, 'connect').then(() => socket);
      })));
    }
    cleanups.push(() => { for (const socket of stalled) socket.destroy(); });
    const last = await acceptPython({ paused: true, timeoutMs: 20_000 });
    cleanups.push(last.close);
    const written = await fillKernelSendQueue(last.socket); // all in the kernel: it waits until its peer reads
    const checks = countChecks();
    const ticks = checks.calls;
    for (const socket of stalled) {
      setLinger(socket, true, 30);
      socket.write(Buffer.alloc(8 * 1024, 1)); // more than the peer's 4 KiB buffer takes: they wait
      void closeSocket(socket);
    }
    await until(() => watchesUnderWay() === COUNT, 10_000, () => `${COUNT} watches (${watchesUnderWay()} so far)`);
    setLinger(last.socket, true, 10);
    const closing = closeSocket(last.socket); // the last in turn
    await until(() => watchesUnderWay() === COUNT + 1, 5000, () => `${COUNT + 1} watches (${watchesUnderWay()} so far)`);
    const untilTicks = (n: number) => until(() => ticks() >= n, 10_000, () => `${n} poll ticks (${ticks()} so far)`);
    await untilTicks(ticks() + 60); // all idle: checked every 4th tick, at most 1,000 of them then
    last.py.command('read');
    expect(await closing).toMatchObject({ type: 'graceful', timedOut: false, delivered: true });
    expect((await last.py.next('fin')).bytes).toBe(written);
    expect(watchesUnderWay(), 'the 1,000 still wait').toBe(COUNT);
  });

  it('checks at most 1,000 sockets a tick, the rest on the next ones: 1,500 closes a python3 peer reads all settle delivered', async () => {
    forcePolling(true);
    const COUNT = 1500;
    // Reads every connection to its FIN; 'check' on stdin: how many FINs, how many bytes, how many resets.
    const peer = spawn('python3', ['-c', String.raw`
import selectors, socket, sys
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4096); srv.setblocking(False)
print(srv.getsockname()[1], flush=True)
sel = selectors.DefaultSelector(); sel.register(srv, selectors.EVENT_READ); sel.register(sys.stdin, selectors.EVENT_READ)
fins = resets = total = 0
while True:
    for key, _ in sel.select():
        if key.fileobj is srv:
            while True:
                try: c, _ = srv.accept()
                except BlockingIOError: break
                c.setblocking(False); sel.register(c, selectors.EVENT_READ)
        elif key.fileobj is sys.stdin:
            sys.stdin.readline(); print('fins', fins, total, resets, flush=True); sys.exit(0)
        else:
            try: data = key.fileobj.recv(1 << 16)
            except ConnectionResetError: data = None
            if data: total += len(data); continue
            if data is None: resets += 1
            else: fins += 1
            sel.unregister(key.fileobj); key.fileobj.close()
`], { stdio: ['pipe', 'pipe', 'inherit'] });
    cleanups.push(() => peer.kill());
    // Lines, not 'data' events: one print can reach us in pieces (seen under ASan: 'fins', then the rest).
    const lines = createInterface({ input: peer.stdout })[Symbol.asyncIterator]();
    const nextLine = async () => String((await lines.next()).value ?? '');
    const port = Number(await nextLine());
    const sockets: net.Socket[] = [];
    for (let i = 0; i < COUNT; i += 250) {
      sockets.push(...await Promise.all(Array.from({ length: 250 }, () => {
        const socket = net.connect(port, '127.0.0.1');
        return once(socket, 'connect').then(() => socket);
      })));
    }
    cleanups.push(() => { for (const socket of sockets) socket.destroy(); });
    const checks = countChecks();
    for (const socket of sockets) {
      setLinger(socket, true, 20);
      socket.write(Buffer.alloc(1000, 1));
    }
    const results = await Promise.all(sockets.map((socket) => closeSocket(socket)));
    expect(results.filter((r) => r.type === 'graceful' && r.delivered === true && !r.timedOut).length).toBe(COUNT);
    expect(checks.most(), 'sockets checked in one tick').toBe(1000);
    expect(watchesUnderWay(), 'watches left once all settled').toBe(0);
    peer.stdin.write('check\n');
    expect((await nextLine()).trim()).toBe(`fins ${COUNT} ${COUNT * 1000} 0`);
  });
});
