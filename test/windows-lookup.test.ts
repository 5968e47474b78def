// The Windows way to a socket's OS handle (src/handle.ts, lookupSocket), run
// on this Linux machine. libuv on Windows does not hand out the SOCKET
// (handle.fd is -1), so the package finds it by the handle's addresses:
// native findSocket walks the loop's handles (native/socket_lookup_win32.cc,
// run for real under Wine by test/windows/run.cjs). Here the runtime's
// descriptor reads -1, process.platform says win32, and findSocket is a
// stand-in that answers from the real descriptors by the same rules
// (addresses; a negative remote port says which peerless socket is meant).
// What the package then does to the socket is real: judged by the kernel's
// values on the real descriptor and by a python peer.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { once } from 'node:events';
import { closeSocket, getLinger } from '../dist/index.js';
import { errnoOf } from '../dist/errors.js';
import { native } from '../dist/native.js';
import { createRequire } from 'node:module';
import { acceptPython, connectPair, expectError, until, type Pair } from './helpers';

// The instance the package itself requires (an ESM import of dist/runtime.js
// gets a copy of its own under vitest: patching that one would change nothing).
const { runtime } = createRequire(__filename)('../dist/runtime.js') as typeof import('../dist/runtime.js');

type Handle = Parameters<typeof runtime.descriptor>[0] & {
  getsockname?: (out: net.AddressInfo) => number;
  getpeername?: (out: net.AddressInfo) => number;
  onconnection?: unknown;
};
interface Lookup { localAddress: string; localPort: number; remoteAddress: string; remotePort: number }

const realDescriptor = runtime.descriptor;
const realFindSocket = native.findSocket;
const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
let lookups: Lookup[] = [];
/** What the stand-in answers instead of searching, when set. */
let answer: number | undefined;
/** The sockets the stand-in can find: their real descriptors. */
let known: Handle[] = [];
let pair: Pair | undefined;

const handleOf = (target: net.Socket | net.Server) => (target as unknown as { _handle: Handle })._handle;

function addressesOf(handle: Handle) {
  const local: net.AddressInfo = {} as net.AddressInfo;
  const remote: net.AddressInfo = {} as net.AddressInfo;
  handle.getsockname!(local);
  const hasPeer = handle.getpeername?.(remote) === 0;
  return { local, remote: hasPeer ? remote : null, listening: typeof handle.onconnection === 'function' };
}

/** findSocket's rules (native/socket_lookup.h) over the known sockets. */
function standInFind(localAddress: string, localPort: number, remoteAddress: string, remotePort: number): number {
  lookups.push({ localAddress, localPort, remoteAddress, remotePort });
  if (answer !== undefined) return answer;
  const found = known.filter((handle) => {
    const { local, remote, listening } = addressesOf(handle);
    if (local.address !== localAddress || local.port !== localPort) return false;
    if (remotePort >= 0) return remote !== null && remote.address === remoteAddress && remote.port === remotePort;
    if (remote !== null || remoteAddress !== '') return false;
    return remotePort === -2 ? listening : remotePort === -3 ? !listening : true;
  });
  if (found.length === 0) return errnoOf('EBADF');
  if (found.length > 1) return errnoOf('EADDRINUSE');
  return realDescriptor(found[0]);
}

const setDescriptor = (read: typeof runtime.descriptor) => { (runtime as { descriptor: typeof runtime.descriptor }).descriptor = read; };
function realFd(target: net.Socket | net.Server) { return realDescriptor(handleOf(target)); }
function kernelLinger(fd: number) {
  const out = new Int32Array(2);
  expect(native.getLinger(fd, out)).toBe(0);
  return { enabled: out[0] === 1, seconds: out[1] };
}

beforeEach(() => {
  lookups = []; answer = undefined; known = [];
  setDescriptor(() => -1);
  (native as { findSocket: typeof native.findSocket }).findSocket = standInFind;
  Object.defineProperty(process, 'platform', { ...platform, value: 'win32' });
});
afterEach(async () => {
  setDescriptor(realDescriptor);
  (native as { findSocket: typeof native.findSocket }).findSocket = realFindSocket;
  Object.defineProperty(process, 'platform', platform);
  await pair?.close(); pair = undefined;
});

describe('the Windows lookup of a socket by its addresses', () => {
  it('finds a connected socket by both addresses, a listener by its own, and asks once per handle', async () => {
    pair = await connectPair();
    const { client, peer, server } = pair;
    known = [handleOf(client), handleOf(peer), handleOf(server)];
    // Three different values, so the wrong socket shows.
    expect(native.setLinger(realFd(client), true, 7)).toBe(0);
    expect(native.setLinger(realFd(peer), true, 3)).toBe(0);
    expect(native.setLinger(realFd(server), true, 5)).toBe(0);

    expect(getLinger(client)).toEqual({ enabled: true, seconds: 7 });
    expect(getLinger(peer)).toEqual({ enabled: true, seconds: 3 });
    expect(getLinger(server)).toEqual({ enabled: true, seconds: 5 });
    const port = (server.address() as net.AddressInfo).port;
    expect(lookups).toEqual([
      { localAddress: '127.0.0.1', localPort: client.localPort, remoteAddress: '127.0.0.1', remotePort: port },
      { localAddress: '127.0.0.1', localPort: port, remoteAddress: '127.0.0.1', remotePort: client.localPort },
      { localAddress: '127.0.0.1', localPort: port, remoteAddress: '', remotePort: -2 },
    ]);
    // A handle keeps its SOCKET until it closes: later calls do not search.
    expect(getLinger(client)).toEqual({ enabled: true, seconds: 7 });
    expect(getLinger(server)).toEqual({ enabled: true, seconds: 5 });
    expect(lookups).toHaveLength(3);
    for (const fd of [realFd(client), realFd(peer), realFd(server)]) native.setLinger(fd, false, 0);
  });

  it('asks for the socket that is not listening when a reset left it without a peer', async () => {
    pair = await connectPair();
    const { client, peer, server } = pair;
    known = [handleOf(client), handleOf(server)];
    client.pause();
    client.on('error', () => {});
    peer.resetAndDestroy();
    // The client reads nothing, so Node has not heard of the reset; the
    // kernel has: getpeername fails from then on.
    await until(() => handleOf(client).getpeername!({} as net.AddressInfo) !== 0, 5000, () => 'the reset to reach the client');
    const clientFd = realFd(client);
    expect(native.setLinger(clientFd, true, 9)).toBe(0);
    expect(getLinger(client)).toEqual({ enabled: true, seconds: 9 });
    native.setLinger(clientFd, false, 0);
    expect(lookups).toEqual([{ localAddress: '127.0.0.1', localPort: client.localPort, remoteAddress: '', remotePort: -3 }]);
    expect(kernelLinger(realFd(server)).enabled).toBe(false); // the listener was not touched
    // A handle without getpeername at all is taken as peerless too.
    const other = await connectPair();
    try {
      known.push(handleOf(other.client));
      (handleOf(other.client) as { getpeername?: unknown }).getpeername = undefined;
      expect(getLinger(other.client)).toEqual({ enabled: false, seconds: 0 });
      expect(lookups[1]).toEqual({ localAddress: '127.0.0.1', localPort: other.client.localPort, remoteAddress: '', remotePort: -3 });
    } finally {
      await other.close();
    }
  });

  it("says ERR_SOCKET_CLOSED when the search finds nothing or the handle has no address, a system error when it fails, and keeps nothing from a failure", async () => {
    pair = await connectPair();
    const { client } = pair;
    known = [handleOf(client)];
    answer = errnoOf('EBADF');
    await expectError(() => getLinger(client), 'ERR_SOCKET_CLOSED');
    answer = errnoOf('EADDRINUSE');
    const error = await expectError(() => getLinger(client), 'EADDRINUSE') as NodeJS.ErrnoException;
    expect(error.syscall).toBe('lookup');
    expect(error.errno).toBe(errnoOf('EADDRINUSE'));
    // Neither answer was kept: the next search finds the socket.
    answer = undefined;
    expect(getLinger(client)).toEqual({ enabled: false, seconds: 0 });
    expect(lookups).toHaveLength(3);

    // Without a local address (libuv closed the socket, its handle not yet
    // gone) the number may be reused: no search at all.
    const other = await connectPair();
    try {
      const handle = handleOf(other.client);
      handle.getsockname = () => errnoOf('EBADF');
      await expectError(() => getLinger(other.client), 'ERR_SOCKET_CLOSED');
      handle.getsockname = undefined;
      await expectError(() => getLinger(other.client), 'ERR_SOCKET_CLOSED');
      expect(lookups).toHaveLength(3);
    } finally {
      await other.close();
    }
  });

  it('searches only on Windows, and only for the -1 that means "not handed out"', async () => {
    pair = await connectPair();
    const { client } = pair;
    known = [handleOf(client)];
    setDescriptor(() => -2);
    await expectError(() => getLinger(client), 'ERR_SOCKET_CLOSED');
    setDescriptor(() => -1);
    Object.defineProperty(process, 'platform', platform);
    await expectError(() => getLinger(client), 'ERR_SOCKET_CLOSED');
    expect(lookups).toHaveLength(0);
    Object.defineProperty(process, 'platform', { ...platform, value: 'win32' });
    expect(getLinger(client)).toEqual({ enabled: false, seconds: 0 });
    expect(lookups).toHaveLength(1);
  });

  it('closes through the found socket: a python peer gets every byte and a FIN, or an RST for linger 0', async () => {
    for (const [enabled, fin] of [[false, true], [true, false]] as const) {
      const conn = await acceptPython();
      try {
        known = [handleOf(conn.socket)];
        // Set on the real descriptor: closeSocket() reads it through the lookup.
        expect(native.setLinger(realFd(conn.socket), enabled, 0)).toBe(0);
        conn.socket.write(Buffer.alloc(100_000, 1));
        const result = await closeSocket(conn.socket);
        const seen = await conn.py.done;
        expect(seen.fin).toBe(fin);
        expect(seen.rst).toBe(!fin);
        if (fin) expect(seen.bytes).toBe(100_000);
        expect(result.type).toBe(fin ? 'graceful' : 'abortive');
        expect(lookups.length).toBeGreaterThan(0);
      } finally {
        await conn.close();
      }
    }
  });
});
