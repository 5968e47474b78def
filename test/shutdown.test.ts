import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { getTcpInfo, shutdown } from '../dist/index.js';
import { errnoOf } from '../dist/errors.js';
import { native } from '../dist/native.js';
import {
  PY_TLS_TCP_ENDING, acceptPython, connectPair, delay, expectError, fixtures, runPythonJson, until, waitForState, watchPeer, type Pair,
} from './helpers';

let pair: Pair | undefined;
afterEach(async () => { await pair?.close(); pair = undefined; });

describe("shutdown(s, 'write')", () => {
  it('sends FIN now; reading goes on; later writes fail cleanly', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    const view = watchPeer(peer);
    client.write('abc');
    await delay(30);
    shutdown(client, 'write');
    const seen = await view.done;
    expect(seen).toMatchObject({ bytes: 3, ended: true, error: null, outcome: 'FIN' });
    await waitForState(client, 'FIN_WAIT_2');
    // The read side still works.
    const received: Buffer[] = [];
    client.on('data', (chunk) => received.push(chunk));
    peer.write('reply');
    await delay(50);
    expect(Buffer.concat(received).toString()).toBe('reply');
    // A later write fails with Node's own error, not a crash.
    const failed = new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
    client.write('late', () => {});
    expect((await failed).code).toBe('ERR_STREAM_WRITE_AFTER_END');
  });

  it("keeps Node's buffered data: every byte, then FIN", async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    const payload = Buffer.alloc(8 * 1024 * 1024, 0x63);
    client.write(payload);
    expect(client.writableLength).toBeGreaterThan(0);
    shutdown(client, 'write');
    const seen = await watchPeer(peer).done;
    expect(seen).toMatchObject({ bytes: payload.length, ended: true, error: null, outcome: 'FIN' });
  });

  it('then the peer ending closes the socket normally', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    client.resume();
    shutdown(client, 'write');
    await watchPeer(peer).done;
    peer.end();
    await once(client, 'close');
    expect(client.destroyed).toBe(true);
  });
});

describe("shutdown(s, 'read')", () => {
  it("emits 'end' locally, keeps the write side, sends nothing to the peer", async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    const ended = once(client, 'end');
    client.resume();
    shutdown(client, 'read');
    await ended;
    expect(client.writable).toBe(true);
    const view = watchPeer(peer);
    client.write('still writing');
    await delay(50);
    expect(view.view.bytes).toBe('still writing'.length);
    expect(view.view.ended).toBe(false);
    expect(getTcpInfo(peer).state).toBe('ESTABLISHED');
  });

  it('data arriving afterwards resets the connection', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    client.resume();
    const clientError = new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
    shutdown(client, 'read');
    const view = watchPeer(peer);
    await delay(20);
    peer.write('too late');
    expect(await clientError).toMatchObject({
      code: 'ECONNRESET', syscall: 'shutdown', message: 'Connection reset: data arrived after shutdown(read)',
    });
    const seen = await view.done;
    expect(seen.outcome).toBe('RST');
  });

  it('data already queued at that moment resets the connection', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    client.pause();
    peer.write('unread');
    await delay(50);
    const clientError = new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
    const view = watchPeer(peer);
    shutdown(client, 'read');
    expect((await clientError).code).toBe('ECONNRESET');
    expect((await view.done).outcome).toBe('RST');
  });

  it("the peer's own FIN afterwards is not a reset", async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    client.resume();
    shutdown(client, 'read');
    let error: unknown = null;
    client.on('error', (e) => { error = e; });
    peer.end();
    await delay(100);
    expect(error).toBeNull();
    expect(getTcpInfo(client).state).toBe('CLOSE_WAIT');
    client.end();
    await once(client, 'close');
  });
});

describe("shutdown(s, 'read'), more", () => {
  it('data the kernel holds but Node has not read yet (a paused socket) resets the connection too', async () => {
    const conn = await acceptPython({ send: 100 }); // Node never reads: pauseOnConnect
    try {
      const fd = (conn.socket as unknown as { _handle: { fd: number } })._handle.fd;
      await until(() => native.readableBytes(fd) === 100, 5000, () => 'the 100 bytes in the kernel');
      expect(conn.socket.readableLength).toBe(0); // none of it in Node's buffer
      let ended = false;
      conn.socket.on('end', () => { ended = true; });
      const error = new Promise<NodeJS.ErrnoException>((resolve) => conn.socket.once('error', resolve));
      shutdown(conn.socket, 'read');
      expect((await error).code).toBe('ECONNRESET');
      expect(ended).toBe(false); // reset at once: no clean 'end' first for data that was lost
      conn.py.command('read');
      conn.py.command('send 1');
      expect(await conn.py.done).toMatchObject({ rst: true });
    } finally {
      await conn.close();
    }
  });

  it('a second shutdown(read) does nothing: no error, and the write side still carries data and its FIN', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    const errors: unknown[] = [];
    client.on('error', (e) => errors.push(e));
    client.resume();
    const ended = once(client, 'end');
    shutdown(client, 'read');
    shutdown(client, 'read');
    await ended;
    await delay(20);
    expect(errors).toEqual([]);
    const view = watchPeer(peer);
    client.end('after both calls');
    expect(await view.done).toMatchObject({ bytes: 'after both calls'.length, ended: true, error: null });
  });

  it('a failing FIONREAD is a system error (syscall ioctl) and the socket is left as it was', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    const real = native.readableBytes;
    native.readableBytes = () => errnoOf('EBADF');
    try {
      const error = await expectError(() => shutdown(client, 'read'), 'EBADF');
      expect(error).toMatchObject({ syscall: 'ioctl', errno: errnoOf('EBADF') });
    } finally {
      native.readableBytes = real;
    }
    const got = new Promise<string>((resolve) => client.once('data', (d) => resolve(String(d))));
    peer.write('still read');
    expect(await got).toBe('still read'); // reading was not shut down
  });
});

describe("shutdown(s, 'write') on TLS", () => {
  // The FIN has to come after TLS's close_notify: a python ssl client that
  // gets a bare FIN raises SSLEOFError ("EOF occurred in violation of protocol").
  const CLIENT = String.raw`
import json, socket, ssl, sys
${PY_TLS_TCP_ENDING}
# suppress_ragged_eofs=False: a FIN without close_notify raises instead of reading as b''
s = ssl._create_unverified_context().wrap_socket(
    socket.create_connection(('127.0.0.1', int(sys.argv[1]))), suppress_ragged_eofs=False)
s.sendall(b'go') # the server answers this: the handshake is over on both sides
got = b''
try:
    while True:
        d = s.recv(65536)
        if not d:
            end = 'close_notify'; break
        got += d
except ssl.SSLEOFError:
    end = 'EOF without close_notify'
except ConnectionResetError:
    end = 'RST'
# Then the TCP stream under it: the FIN, or an RST.
print(json.dumps(dict(end=end, tcp=ending(s), data=got.decode())))
`;

  for (const sent of ['', 'last words']) {
    it(`sends close_notify, then the FIN${sent ? ', after the data' : ' (nothing written first)'}`, async () => {
      const server = tls.createServer({ ...fixtures, allowHalfOpen: true });
      server.on('secureConnection', (socket: tls.TLSSocket) => {
        socket.once('data', () => {
          if (sent) socket.write(sent);
          shutdown(socket, 'write');
        });
        socket.on('end', () => socket.end());
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      try {
        const seen = await runPythonJson(CLIENT, [(server.address() as net.AddressInfo).port], 15_000);
        expect(seen).toEqual({ end: 'close_notify', tcp: 'fin', data: sent });
      } finally {
        server.close();
      }
    });
  }
});

describe("shutdown(s, 'both')", () => {
  it('every byte then FIN to the peer, local end; late data from the peer is reset', async () => {
    pair = await connectPair();
    const { client, peer } = pair;
    client.resume();
    const ended = once(client, 'end');
    client.write('last words');
    shutdown(client, 'both');
    await ended;
    const view = await watchPeer(peer).done;
    expect(view).toMatchObject({ bytes: 'last words'.length, ended: true, error: null });
    await waitForState(peer, 'CLOSE_WAIT');
    // Both directions are done, so Node releases the handle, as after end()
    // on a socket whose reading has ended; what the peer sends now is reset.
    if (!client.closed) await once(client, 'close');
    const peerError = new Promise<NodeJS.ErrnoException>((resolve) => peer.once('error', resolve));
    peer.write('after both');
    await delay(20);
    peer.write('again');
    expect((await peerError).code).toMatch(/ECONNRESET|EPIPE/);
  });
});

describe('shutdown errors', () => {
  it('refuses a bad how and an unconnected socket', async () => {
    pair = await connectPair();
    const how = await expectError(() => shutdown(pair!.client, 'sideways' as 'read'), 'ERR_INVALID_ARG_VALUE');
    expect(how.message).toBe("The argument 'how' must be one of: 'read', 'write', 'both'. Received 'sideways'");
    await expectError(() => shutdown(pair!.client, undefined as unknown as 'read'), 'ERR_INVALID_ARG_VALUE');
    const { Socket } = await import('node:net');
    const error = await expectError(() => shutdown(new Socket(), 'write'), 'ENOTCONN');
    expect(error.syscall).toBe('shutdown');
    expect(typeof error.errno).toBe('number');
  });
});
