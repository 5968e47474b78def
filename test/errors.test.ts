import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  closeSocket, getLinger, getTcpInfo, gracefulShutdown, LINGER_MAX_SECONDS, setLinger, shutdown,
} from '../dist/index.js';
import {
  errnoOf, invalidArgType, invalidArgValue, outOfRange, socketClosed, systemError,
} from '../dist/errors.js';
import { native } from '../dist/native.js';
import { connectPair, delay, expectError, runProcess, until, watchPeer, type Pair } from './helpers';

let pair: Pair | undefined;
afterEach(async () => { await pair?.close(); pair = undefined; });

const notSockets: unknown[] = [undefined, null, 0, 3, 'socket', {}, [], () => {}, { _handle: { fd: 0 } }];

describe('argument errors', () => {
  it('ERR_INVALID_ARG_TYPE for anything but a socket or server', async () => {
    for (const value of notSockets) {
      const error = await expectError(() => setLinger(value as net.Socket, true, 0), 'ERR_INVALID_ARG_TYPE');
      expect(error).toBeInstanceOf(TypeError);
      await expectError(() => getLinger(value as net.Socket), 'ERR_INVALID_ARG_TYPE');
      await expectError(() => shutdown(value as net.Socket, 'write'), 'ERR_INVALID_ARG_TYPE');
      await expectError(() => getTcpInfo(value as net.Socket), 'ERR_INVALID_ARG_TYPE');
    }
    // instanceof alone is not enough: objects whose constructor never ran.
    for (const value of [Object.create(net.Socket.prototype), Object.create(net.Server.prototype)]) {
      await expectError(() => setLinger(value as net.Socket, true, 0), 'ERR_INVALID_ARG_TYPE');
      await expectError(() => getLinger(value as net.Socket), 'ERR_INVALID_ARG_TYPE');
      await expectError(() => shutdown(value as net.Socket, 'write'), 'ERR_INVALID_ARG_TYPE');
      await expectError(closeSocket(value as net.Socket), 'ERR_INVALID_ARG_TYPE');
    }
    // The message names the argument and what it must be, as Node's own do.
    expect((await expectError(() => setLinger(3 as unknown as net.Socket, true, 0), 'ERR_INVALID_ARG_TYPE')).message)
      .toBe('The "target" argument must be an instance of net.Socket, tls.TLSSocket or net.Server. Received type number (3)');
    expect((await expectError(() => shutdown(3 as unknown as net.Socket, 'write'), 'ERR_INVALID_ARG_TYPE')).message)
      .toBe('The "socket" argument must be an instance of net.Socket or tls.TLSSocket. Received type number (3)');
    expect((await expectError(closeSocket(3 as unknown as net.Socket), 'ERR_INVALID_ARG_TYPE')).message)
      .toBe('The "socket" argument must be an instance of net.Socket or tls.TLSSocket. Received type number (3)');
    const udp = dgram.createSocket('udp4');
    await expectError(() => setLinger(udp as unknown as net.Socket, true, 0), 'ERR_INVALID_ARG_TYPE');
    udp.close();
    await expectError(() => shutdown(net.createServer() as unknown as net.Socket, 'write'), 'ERR_INVALID_ARG_TYPE');
  });

  it('a look-alike made from net.Socket.prototype that carries a live socket\'s handle is refused; the real socket\'s linger is left alone', async () => {
    pair = await connectPair();
    setLinger(pair.client, true, 1); // a connected socket first: the fast path is open
    const { peer } = pair;
    const handle = (peer as unknown as { _handle: unknown })._handle;
    const fake = Object.assign(Object.create(net.Socket.prototype), { _handle: handle, connecting: false });
    for (const seconds of [7, 0]) {
      const error = await expectError(() => setLinger(fake as net.Socket, true, seconds), 'ERR_INVALID_ARG_TYPE');
      expect(error).toBeInstanceOf(TypeError);
    }
    await expectError(() => setLinger(fake as net.Socket, false), 'ERR_INVALID_ARG_TYPE');
    expect(getLinger(peer)).toEqual({ enabled: false, seconds: 0 });
  });

  it('look-alikes of an Http2Session are refused (ERR_INVALID_ARG_TYPE) and the real socket inside them is left alone', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    const lookAlikes = [
      { goaway() {}, close() {} }, // no socket slot
      { close() {}, [Symbol('socket')]: client }, // no goaway()
      { goaway() {}, [Symbol('socket')]: client }, // no close()
    ];
    for (const value of lookAlikes) {
      for (const call of [() => closeSocket(value as never), () => gracefulShutdown(value as never)])
        await expectError(call, 'ERR_INVALID_ARG_TYPE');
    }
    expect(client.destroyed || client.writableEnded).toBe(false);
    client.write('still here');
    peer.resume();
    const [data] = await once(peer, 'data');
    expect(String(data)).toBe('still here');
  });

  it('enabled must be a boolean, seconds an exact integer in range', async () => {
    pair = await connectPair();
    const s = pair.client;
    // A valid call first: from then on a connected socket takes setLinger's
    // fast path (src/linger.ts), which must refuse exactly what the full one does.
    setLinger(s, true, 7);
    const refusals = async (target: net.Socket) => {
      for (const enabled of [1, 'yes', null, undefined])
        await expectError(() => setLinger(target, enabled as unknown as boolean, 1), 'ERR_INVALID_ARG_TYPE');
      for (const seconds of ['1', null, 1n, {}])
        await expectError(() => setLinger(target, true, seconds as number), 'ERR_INVALID_ARG_TYPE');
      for (const seconds of [-1, 1.5, NaN, Infinity, -0.5, LINGER_MAX_SECONDS + 1]) {
        const error = await expectError(() => setLinger(target, true, seconds), 'ERR_OUT_OF_RANGE');
        expect(error).toBeInstanceOf(RangeError);
      }
    };
    await refusals(s);
    // Nothing was changed by the refused calls (the kernel's value).
    expect(getLinger(s)).toEqual({ enabled: true, seconds: 7 });
    // The bounds themselves are accepted.
    setLinger(s, true, LINGER_MAX_SECONDS);
    expect(getLinger(s)).toEqual({ enabled: true, seconds: LINGER_MAX_SECONDS });
    setLinger(s, true, 0);
    expect(getLinger(s)).toEqual({ enabled: true, seconds: 0 });
    // Off ignores the seconds entirely.
    setLinger(s, false, -5);
    expect(getLinger(s)).toEqual({ enabled: false, seconds: 0 });
    setLinger(s, true, 4);
    setLinger(s, false, 5);
    expect(getLinger(s)).toEqual({ enabled: false, seconds: 0 });
    // A socket not connected yet takes the full path: the same refusals, nothing deferred.
    const pending = new net.Socket();
    await refusals(pending);
    expect(getLinger(pending)).toEqual({ enabled: false, seconds: 0 });
    // The full path takes the bound too (kept until connect), and words its refusals as Node does.
    setLinger(pending, true, LINGER_MAX_SECONDS);
    expect(getLinger(pending)).toEqual({ enabled: true, seconds: LINGER_MAX_SECONDS });
    for (const target of [s, pending]) {
      expect((await expectError(() => setLinger(target, 'yes' as never, 1), 'ERR_INVALID_ARG_TYPE')).message)
        .toBe('The "enabled" argument must be of type boolean. Received type string (\'yes\')');
      expect((await expectError(() => setLinger(target, true, '1' as never), 'ERR_INVALID_ARG_TYPE')).message)
        .toBe('The "seconds" argument must be of type number. Received type string (\'1\')');
      expect((await expectError(() => setLinger(target, true, LINGER_MAX_SECONDS + 1), 'ERR_OUT_OF_RANGE')).message)
        .toBe(`The value of "seconds" is out of range. It must be an integer >= 0 && <= ${LINGER_MAX_SECONDS}. Received ${LINGER_MAX_SECONDS + 1}`);
    }
    pending.destroy();
  });

  it('a failing setsockopt or getsockopt is a system error with code, errno and syscall, on either path, and changes nothing', async () => {
    pair = await connectPair();
    const s = pair.client;
    setLinger(s, true, 2); // also opens the fast path for connected sockets
    const server = net.createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { setLinger: realSet, getLinger: realGet } = native;
    const EINVAL = errnoOf('EINVAL'); // libuv's (negative) number
    try {
      native.setLinger = () => EINVAL; // the kernel refuses (a race with a close underneath, say)
      for (const target of [s, server] as (net.Socket | net.Server)[]) {
        const error = await expectError(() => setLinger(target, true, 3), 'EINVAL');
        expect(error).toMatchObject({ syscall: 'setsockopt', errno: EINVAL });
        expect(error.message).toMatch(/^setsockopt EINVAL/);
      }
      native.getLinger = () => EINVAL;
      const error = await expectError(() => getLinger(s), 'EINVAL');
      expect(error).toMatchObject({ syscall: 'getsockopt', errno: EINVAL });
    } finally {
      native.setLinger = realSet;
      native.getLinger = realGet;
      server.close();
    }
    expect(getLinger(s)).toEqual({ enabled: true, seconds: 2 });
  });

  it('close options: ERR_INVALID_ARG_TYPE or ERR_OUT_OF_RANGE naming the option and what it must be; the socket is left as it was', async () => {
    pair = await connectPair();
    const { client } = pair;
    const cases: [() => unknown, string][] = [
      [() => closeSocket(client, 5 as never), 'The "options" argument must be of type object. Received'],
      [() => gracefulShutdown(client, null as never), 'The "options" argument must be of type object. Received'],
      [() => closeSocket(client, { signal: {} as never }), 'The "options.signal" argument must be an instance of AbortSignal. Received'],
      [() => gracefulShutdown(client, { signal: 'stop' as never }), 'The "options.signal" argument must be an instance of AbortSignal. Received'],
      [() => gracefulShutdown(client, { timeout: 'soon' as never }), 'The "options.timeout" argument must be of type number. Received'],
    ];
    for (const [call, message] of cases) {
      const error = await expectError(call, 'ERR_INVALID_ARG_TYPE');
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message.startsWith(message), error.message).toBe(true);
    }
    const range = await expectError(() => gracefulShutdown(client, { timeout: -1 }), 'ERR_OUT_OF_RANGE');
    expect(range.message.startsWith('The value of "options.timeout" is out of range.'), range.message).toBe(true);
    // The largest timer Node can arm is the bound.
    expect((await expectError(() => gracefulShutdown(client, { timeout: 2 ** 31 }), 'ERR_OUT_OF_RANGE')).message)
      .toBe('The value of "options.timeout" is out of range. It must be >= 0 && <= 2147483647. Received 2147483648');
    // No half-done effect: still open both ways, the peer got no FIN.
    expect(client.destroyed || client.writableEnded).toBe(false);
    client.write('still here');
    pair.peer.resume();
    const [data] = await once(pair.peer, 'data');
    expect(String(data)).toBe('still here');
    // closeSocket has no timeout (its wait is the linger): the key is not rejected, as Node does not reject unknown options.
    setLinger(client, true, 0);
    expect(await closeSocket(client, { timeout: 'soon' } as never)).toMatchObject({ type: 'abortive' });
  });

  it('a timeout of 2^31 - 1 ms (the largest Node timer) is accepted: the shutdown runs and the peer gets the FIN', async () => {
    pair = await connectPair();
    const { view } = watchPeer(pair.peer);
    const result = gracefulShutdown(pair.client, { timeout: 2 ** 31 - 1 });
    await until(() => view.ended, 5000, () => "the peer's 'end'");
    expect(view.error).toBeNull();
    pair.peer.end(); // the peer answers with its own FIN: the sequence completes
    expect(await result).toMatchObject({ type: 'graceful', timedOut: false });
  });

  it("ERR_INVALID_ARG_VALUE for a bad 'how'", async () => {
    pair = await connectPair();
    for (const how of ['READ', 'send', '', 0, null, 'rdwr']) {
      const error = await expectError(() => shutdown(pair!.client, how as 'read'), 'ERR_INVALID_ARG_VALUE');
      expect(error).toBeInstanceOf(TypeError);
    }
  });
});

describe('closed and non-TCP sockets', () => {
  it('ERR_SOCKET_CLOSED after destroy, even when the fd number now belongs to another socket', async () => {
    pair = await connectPair();
    const victim = pair.client;
    const oldFd = (victim as unknown as { _handle: { fd: number } })._handle.fd;
    victim.destroy();
    // A new connection takes the lowest free descriptor: the one just freed.
    const accepted = once(pair.server, 'connection');
    const client = net.connect((pair.server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    const [peer] = (await accepted) as [net.Socket];
    const other = [client, peer];
    const fds = other.map((s) => (s as unknown as { _handle: { fd: number } })._handle.fd);
    expect(fds).toContain(oldFd);
    const reused = other[fds.indexOf(oldFd)];
    for (const call of [
      () => setLinger(victim, true, 0),
      () => getLinger(victim),
      () => shutdown(victim, 'both'),
      () => getTcpInfo(victim),
    ]) {
      const error = await expectError(call, 'ERR_SOCKET_CLOSED');
      expect(error).toBeInstanceOf(Error);
    }
    expect(getLinger(reused)).toEqual({ enabled: false, seconds: 0 });
    expect(getTcpInfo(reused).state).toBe('ESTABLISHED');
    client.destroy();
    peer.destroy();
  });

  it('ERR_SOCKET_CLOSED when the handle was closed underneath (the socket object still has it)', async () => {
    pair = await connectPair();
    setLinger(pair.client, true, 1); // a connected socket first: the fast path is open
    const { peer } = pair;
    const handle = (peer as unknown as { _handle: { fd: number; close(): void } })._handle;
    handle.close(); // not through destroy(): Node's socket still holds the handle, its descriptor is gone
    expect(handle.fd).toBe(-1);
    expect(peer.destroyed).toBe(false);
    for (const seconds of [3, 0]) {
      const error = await expectError(() => setLinger(peer, true, seconds), 'ERR_SOCKET_CLOSED');
      expect(error).toBeInstanceOf(Error);
    }
    await expectError(() => setLinger(peer, false), 'ERR_SOCKET_CLOSED');
  });

  it('ERR_SOCKET_CLOSED after the socket closed by itself', async () => {
    pair = await connectPair();
    pair.client.end();
    pair.peer.resume();
    pair.peer.end();
    await once(pair.client, 'close');
    await expectError(() => setLinger(pair!.client, true, 0), 'ERR_SOCKET_CLOSED');
  });

  it('ERR_INVALID_HANDLE_TYPE for pipes (client and server)', async () => {
    const path = process.platform === 'win32'
      ? `\\\\?\\pipe\\socket-linger-${process.pid}`
      : join(mkdtempSync(join(tmpdir(), 'socket-linger-')), 'pipe.sock');
    const server = net.createServer((s) => s.resume());
    server.listen(path);
    await once(server, 'listening');
    const client = net.connect(path);
    await once(client, 'connect');
    for (const call of [
      () => setLinger(client, true, 0),
      () => getLinger(client),
      () => shutdown(client, 'write'),
      () => getTcpInfo(client),
      () => setLinger(server, true, 1),
      () => getLinger(server),
    ]) {
      const error = await expectError(call, 'ERR_INVALID_HANDLE_TYPE');
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message, 'names what the handle is').toBe('This handle type cannot be used: pipe (a TCP socket is required)');
    }
    client.destroy();
    server.close();
  });

  it("ERR_INVALID_HANDLE_TYPE names a handle with no constructor as such, and touches nothing", async () => {
    // A socket whose _handle was swapped for a bare object (user code, a mock).
    const socket = new net.Socket();
    (socket as unknown as { _handle: object })._handle = Object.create(null);
    for (const call of [() => setLinger(socket, true, 0), () => getLinger(socket), () => getTcpInfo(socket)]) {
      const error = await expectError(call, 'ERR_INVALID_HANDLE_TYPE');
      expect(error.message).toBe('This handle type cannot be used: undefined (a TCP socket is required)');
    }
    (socket as unknown as { _handle: null })._handle = null;
    socket.destroy();
  });

  // An unknown runtime (process.release.name not 'node'): a handle that is not
  // libuv's TCP is ERR_UNSUPPORTED_RUNTIME naming it; under Node the same
  // handle is ERR_INVALID_HANDLE_TYPE (the control); libuv handles work.
  it('ERR_UNSUPPORTED_RUNTIME names an unknown runtime; Node says ERR_INVALID_HANDLE_TYPE', async () => {
    const script = String.raw`
      if (process.argv[1] === 'unknown') Object.defineProperty(process, 'release', { value: { ...process.release, name: 'workerd' } });
      const net = require('node:net');
      const sl = require(${JSON.stringify(join(__dirname, '..', 'dist', 'index.js'))});
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const client = net.connect(server.address().port, '127.0.0.1', () => {
          const linger = sl.getLinger(client);
          const real = client._handle;
          client._handle = {};
          let code, message;
          try { sl.getLinger(client); } catch (e) { ({ code, message } = e); }
          client._handle = real;
          console.log(JSON.stringify({ linger, code, message }));
          process.exit(0);
        });
      });
    `;
    const run = async (mode: string) => JSON.parse((await runProcess(process.execPath, ['-e', script, mode])).stdout);
    const unknown = await run('unknown');
    expect(unknown.linger).toEqual({ enabled: false, seconds: 0 });
    expect(unknown.code).toBe('ERR_UNSUPPORTED_RUNTIME');
    expect(unknown.message).toContain(`workerd ${process.version}`);
    const node = await run('node');
    expect(node.code).toBe('ERR_INVALID_HANDLE_TYPE');
  });

  it('system errors carry code, errno and syscall', async () => {
    pair = await connectPair();
    setLinger(pair.client, true, 0);
    pair.client.destroy(); // the peer (not reading) is reset underneath
    await delay(50);
    expect(getTcpInfo(pair.peer).state).toBe('CLOSED');
    const error = await expectError(() => shutdown(pair!.peer, 'write'), 'ENOTCONN');
    expect(error.syscall).toBe('shutdown');
    expect(error.errno).toBeLessThan(0);
    expect(error.message).toMatch(/^shutdown ENOTCONN/);
  });

  it('a deferred setting that fails is reported on the socket or server, not thrown into the void', async () => {
    const client = new net.Socket();
    setLinger(client, true, 1);
    const error = new Promise<Error>((resolve) => client.once('error', resolve));
    const path = join(mkdtempSync(join(tmpdir(), 'socket-linger-')), 'p.sock');
    const server = net.createServer();
    setLinger(server, true, 1); // applied on 'listening': a pipe, so it cannot
    const serverError = new Promise<Error>((resolve) => server.once('error', resolve));
    server.listen(path);
    const reported = await Promise.race([serverError, delay(3000).then(() => null)]);
    expect((reported as NodeJS.ErrnoException | null)?.code, "the server's 'error'").toBe('ERR_INVALID_HANDLE_TYPE');
    client.connect(path); // a pipe: the pending TCP option cannot apply
    expect((await error as NodeJS.ErrnoException).code).toBe('ERR_INVALID_HANDLE_TYPE');
    server.close();
  });
});

describe('error objects, as Node makes its own', () => {
  // What follows "Received" is Node's own wording for each kind of value
  // (its ERR_INVALID_ARG_TYPE, checked against path.join() on Node 24).
  it('ERR_INVALID_ARG_TYPE describes what it received as Node does', () => {
    const nested = Object.assign(Object.create(null), { a: { b: { c: 1 } } });
    const cases: [unknown, string][] = [
      [null, 'null'],
      [undefined, 'undefined'],
      [function named() {}, 'function named'],
      [Object.defineProperty(() => {}, 'name', { value: '' }), 'function <anonymous>'],
      [new Map(), 'an instance of Map'],
      [{}, 'an instance of Object'],
      [nested, '[Object: null prototype]'], // no constructor: its tag only, not its contents
      [3, 'type number (3)'],
      [10n, 'type bigint (10n)'],
      [Symbol('s'), 'type symbol (Symbol(s))'],
      ['x'.repeat(26), `type string ('${'x'.repeat(26)}')`], // 28 characters: shown whole
      ['x'.repeat(27), `type string ('${'x'.repeat(24)}...)`], // 29: cut to 25 and "..."
    ];
    for (const [value, shown] of cases) {
      const error = invalidArgType('socket', 'an instance of net.Socket', value);
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe(`The "socket" argument must be an instance of net.Socket. Received ${shown}`);
    }
  });

  it('`code` is an own, enumerable, writable property, as on Node\'s errors', () => {
    let nodes: NodeJS.ErrnoException | undefined;
    try {
      join(3 as unknown as string);
    } catch (error) {
      nodes = error as NodeJS.ErrnoException;
    }
    const expected = Object.getOwnPropertyDescriptor(nodes, 'code');
    expect(expected).toEqual({ value: 'ERR_INVALID_ARG_TYPE', writable: true, enumerable: true, configurable: true });
    for (const error of [invalidArgType('a', 'x', 1), invalidArgValue('a', 1, 'is x'), outOfRange('a', '>= 0', -1), socketClosed()])
      expect(Object.getOwnPropertyDescriptor(error, 'code')).toEqual({ ...expected, value: error.code });
    expect(JSON.parse(JSON.stringify(socketClosed()))).toEqual({ code: 'ERR_SOCKET_CLOSED' });
  });

  it('the other messages and codes', () => {
    expect(invalidArgValue('how', { a: 1 }, "must be 'read', 'write' or 'both'"))
      .toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: "The argument 'how' must be 'read', 'write' or 'both'. Received { a: 1 }" });
    expect(outOfRange('seconds', '>= 0 and <= 10', -1))
      .toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: 'The value of "seconds" is out of range. It must be >= 0 and <= 10. Received -1' });
    expect(socketClosed()).toMatchObject({ name: 'Error', code: 'ERR_SOCKET_CLOSED', message: 'Socket is closed' });
  });

  it("system errors use libuv's names and descriptions; an unknown number says so", () => {
    const ebadf = errnoOf('EBADF');
    expect(ebadf).toBe(-constants.errno.EBADF); // libuv's numbers are POSIX's, negated
    expect(systemError(ebadf, 'setsockopt')).toMatchObject({
      code: 'EBADF', errno: ebadf, syscall: 'setsockopt', message: 'setsockopt EBADF: bad file descriptor',
    });
    expect(errnoOf('ECONNRESET')).toBe(-constants.errno.ECONNRESET);
    expect(systemError(-99999, 'ioctl')).toMatchObject({
      code: 'Unknown system error -99999', errno: -99999, syscall: 'ioctl', message: 'ioctl Unknown system error -99999: unknown error',
    });
    expect(() => errnoOf('ENOTANERROR')).toThrow('unknown system error ENOTANERROR');
  });
});
