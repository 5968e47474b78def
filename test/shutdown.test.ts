import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { getTcpInfo, shutdown } from '../dist/index.js';
import { connectPair, delay, expectError, waitForState, watchPeer, type Pair } from './helpers';

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
    expect((await clientError).code).toBe('ECONNRESET');
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
    await expectError(() => shutdown(pair!.client, 'sideways' as 'read'), 'ERR_INVALID_ARG_VALUE');
    await expectError(() => shutdown(pair!.client, undefined as unknown as 'read'), 'ERR_INVALID_ARG_VALUE');
    const { Socket } = await import('node:net');
    const error = await expectError(() => shutdown(new Socket(), 'write'), 'ENOTCONN');
    expect(error.syscall).toBe('shutdown');
    expect(typeof error.errno).toBe('number');
  });
});
