// Real network faults between us (root namespace) and a peer process in its
// own network namespace, joined by a veth pair; the faults are nftables drops
// in the peer's namespace (see netns.ts). The peer (peer.py) judges what it
// got with plain syscalls: bytes, sha256, FIN (recv() == 0) or RST
// (ECONNRESET).
//
// What must hold: a lingering close and gracefulShutdown settle at their
// deadlines with an RST when the peer cannot be reached or does not
// acknowledge, never hang and never stall the loop; graceful rows deliver
// every byte under 10 % packet loss; a killed peer gives an honest result.
//
// That these tests can fail: scripts/prove-faults-fail.sh runs them against
// a copy of dist/ whose linger timer never fires (scripts/break-linger-timer.sh).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { closeSocket, gracefulShutdown, setLinger, type CloseResult } from '../../dist/index.js';
import { delay, measureStall } from '../helpers';
import {
  createTestNet, peerPayload, sha256, startPeer, type PeerOptions, type PeerProcess, type TestNet,
} from './netns';

const MAX_STALL_MS = 200;

let tn: TestNet;
let peer: PeerProcess | undefined;
let client: net.Socket | undefined;

beforeAll(() => { tn = createTestNet(); });
afterAll(() => { tn?.destroy(); });
afterEach(async () => {
  tn?.setFault(null);
  client?.destroy();
  client = undefined;
  await peer?.stop();
  peer = undefined;
});

async function connect(options: PeerOptions): Promise<{ client: net.Socket; peer: PeerProcess }> {
  peer = await startPeer(tn, options);
  client = net.connect({ host: tn.peerAddress, port: peer.port, localAddress: tn.localAddress });
  await once(client, 'connect');
  await peer.next('accepted');
  return { client, peer };
}

/** Rejects if `promise` has not settled within `ms`: a close must never hang. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** The close under test, with the loop watched and a hard deadline. */
async function closeWatched(what: string, close: () => Promise<CloseResult>, deadlineMs: number) {
  const { result, maxStallMs } = await measureStall(() => within(close(), deadlineMs, what));
  return { result, maxStallMs };
}

function expectTimedOutReset(result: CloseResult, deadlineMs: number) {
  expect(result).toMatchObject({ type: 'abortive', waited: true, timedOut: true });
  expect(result.elapsedMs).toBeGreaterThanOrEqual(deadlineMs - 10);
  expect(result.elapsedMs).toBeLessThan(deadlineMs + 1500);
}

// ---------------------------------------------------------------------------

describe('a peer that vanishes mid-close (every packet dropped)', () => {
  const PAYLOAD = 4 * 1024 * 1024;

  it('closeSocket with linger 2: RST at 2 s, and no trace of the connection is left', async () => {
    const { client, peer } = await connect({ read: 'all' });
    setLinger(client, true, 2);
    tn.setFault('vanish');
    client.write(randomBytes(PAYLOAD));
    const { result, maxStallMs } = await closeWatched('closeSocket', () => closeSocket(client), 5000);
    expectTimedOutReset(result, 2000);
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    // Our kernel holds nothing for it any more: an abortive close, not an
    // orphan retrying its FIN for minutes.
    expect(tn.ourConnections(peer.port)).toEqual([]);
    // The peer comes back and finds the connection reset.
    tn.setFault(null);
    peer.command('probe');
    const seen = await peer.next('probed');
    expect(seen.how).toBe('RST');
    expect(seen.bytes).toBeLessThan(PAYLOAD);
  });

  it('gracefulShutdown with a 1.5 s timeout: RST at 1.5 s', async () => {
    const { client, peer } = await connect({ read: 'all', onEof: 'fin' });
    tn.setFault('vanish');
    client.write(randomBytes(PAYLOAD));
    const { result, maxStallMs } = await closeWatched(
      'gracefulShutdown', () => gracefulShutdown(client, { timeout: 1500 }), 5000);
    expectTimedOutReset(result, 1500);
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    expect(tn.ourConnections(peer.port)).toEqual([]);
    tn.setFault(null);
    peer.command('probe');
    expect((await peer.next('probed')).how).toBe('RST');
  });

  it('linger off (SO_DONTLINGER): settles at once; a peer back after 1 s still gets every byte + FIN', async () => {
    const { client, peer } = await connect({ read: 'all' });
    const data = randomBytes(1024 * 1024);
    tn.setFault('vanish');
    client.write(data);
    const { result, maxStallMs } = await closeWatched('closeSocket', () => closeSocket(client), 1000);
    expect(result).toMatchObject({ type: 'graceful', waited: false, timedOut: false });
    expect(result.elapsedMs).toBeLessThan(1000); // at once: no wait for the vanished peer
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    await delay(1000);
    tn.setFault(null);
    const seen = await peer.next('end', 30_000);
    expect(seen).toMatchObject({ bytes: data.length, sha256: sha256(data), how: 'FIN', error: null });
  });
});

describe('10 % random packet loss in each direction', () => {
  const PAYLOAD = 2 * 1024 * 1024;

  // Evidence that the fault was real: the drop rules counted packets.
  const expectDrops = () => expect(tn.dropped()).toBeGreaterThan(0);

  it('linger off: every byte and the FIN arrive (sha256)', async () => {
    const { client, peer } = await connect({ read: 'all' });
    const data = randomBytes(PAYLOAD);
    tn.setFault('loss');
    client.write(data);
    const { result, maxStallMs } = await closeWatched('closeSocket', () => closeSocket(client), 1000);
    expect(result).toMatchObject({ type: 'graceful', waited: false, timedOut: false });
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    const seen = await peer.next('end', 45_000);
    expectDrops();
    expect(seen).toMatchObject({ bytes: PAYLOAD, sha256: sha256(data), how: 'FIN', error: null });
  });

  it('linger 30: waits for delivery, graceful, every byte (sha256) + FIN', async () => {
    const { client, peer } = await connect({ read: 'all' });
    const data = randomBytes(PAYLOAD);
    setLinger(client, true, 30);
    tn.setFault('loss');
    client.write(data);
    const { result, maxStallMs } = await closeWatched('closeSocket', () => closeSocket(client), 35_000);
    expect(result).toMatchObject({ type: 'graceful', waited: true, timedOut: false });
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    const seen = await peer.next('end', 10_000);
    expectDrops();
    expect(seen).toMatchObject({ bytes: PAYLOAD, sha256: sha256(data), how: 'FIN', error: null });
  });

  it('gracefulShutdown: both directions complete (sha256 each way), graceful', async () => {
    const REPLY = 256 * 1024;
    const { client, peer } = await connect({ read: 'all', send: REPLY, onEof: 'fin' });
    const data = randomBytes(PAYLOAD);
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    tn.setFault('loss');
    client.write(data);
    const { result, maxStallMs } = await closeWatched(
      'gracefulShutdown', () => gracefulShutdown(client, { timeout: 40_000 }), 45_000);
    expect(result).toMatchObject({ type: 'graceful', waited: true, timedOut: false });
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    const got = Buffer.concat(received);
    expect(got.length).toBe(REPLY);
    expect(sha256(got)).toBe(sha256(peerPayload(REPLY)));
    const seen = await peer.next('end', 10_000);
    expectDrops();
    expect(seen).toMatchObject({ bytes: PAYLOAD, sha256: sha256(data), how: 'FIN', error: null });
  });

  it('linger 2 with a peer that does not read: RST at 2 s all the same', async () => {
    const { client, peer } = await connect({ read: 'none' });
    setLinger(client, true, 2);
    tn.setFault('loss');
    client.write(randomBytes(4 * PAYLOAD));
    const { result, maxStallMs } = await closeWatched('closeSocket', () => closeSocket(client), 5000);
    expectTimedOutReset(result, 2000);
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    expectDrops();
    tn.setFault(null);
    peer.command('read');
    const seen = await peer.next('end', 10_000);
    expect(seen.how).toBe('RST');
    expect(seen.bytes).toBeLessThan(4 * PAYLOAD);
  });
});

describe('a peer that stops acknowledging (its pure ACKs dropped)', () => {
  const PAYLOAD = 4 * 1024 * 1024;

  it('closeSocket with linger 2: RST at 2 s; the peer sees the RST', async () => {
    const { client, peer } = await connect({ read: 'all' });
    setLinger(client, true, 2);
    tn.setFault('noack');
    client.write(randomBytes(PAYLOAD));
    const { result, maxStallMs } = await closeWatched('closeSocket', () => closeSocket(client), 5000);
    expectTimedOutReset(result, 2000);
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    expect(tn.ourConnections(peer.port)).toEqual([]);
    const seen = await peer.next('end', 10_000);
    expect(seen.how).toBe('RST');
    expect(seen.bytes).toBeLessThan(PAYLOAD);
  });

  it('gracefulShutdown with a 1.5 s timeout: RST at 1.5 s', async () => {
    const { client, peer } = await connect({ read: 'all', onEof: 'fin' });
    tn.setFault('noack');
    client.write(randomBytes(PAYLOAD));
    const { result, maxStallMs } = await closeWatched(
      'gracefulShutdown', () => gracefulShutdown(client, { timeout: 1500 }), 5000);
    expectTimedOutReset(result, 1500);
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    const seen = await peer.next('end', 10_000);
    expect(seen.how).toBe('RST');
  });

  it('a small write the peer got but never acknowledged: RST at n, reported as such', async () => {
    const { client, peer } = await connect({ read: 'all' });
    setLinger(client, true, 1);
    tn.setFault('noack');
    client.write(randomBytes(1000));
    const { result } = await closeWatched('closeSocket', () => closeSocket(client), 4000);
    expectTimedOutReset(result, 1000);
    // The peer had the data and our FIN (its ACKs never came back)...
    expect(await peer.next('end', 10_000)).toMatchObject({ bytes: 1000, how: 'FIN' });
    // ...but our side could not know: it reset at n s, and says so.
    await delay(100);
    peer.command('report');
    expect((await peer.next('report')).state).toBe('CLOSE');
    expect(tn.ourConnections(peer.port)).toEqual([]);
  });
});

describe('a peer process killed with SIGKILL mid-transfer', () => {
  const PAYLOAD = 8 * 1024 * 1024;

  it('not reading, closeSocket with linger 5: the peer kernel resets; the close settles abortive', async () => {
    const { client, peer } = await connect({ read: 'none' });
    setLinger(client, true, 5);
    client.write(randomBytes(PAYLOAD));
    setTimeout(() => process.kill(peer.pid, 'SIGKILL'), 300);
    const { result, maxStallMs } = await closeWatched('closeSocket', () => closeSocket(client), 7000);
    // Unread data in the dead peer's receive queue: its kernel sent an RST.
    // Every byte was not delivered, so 'graceful' would be a lie.
    expect(result.type).toBe('abortive');
    expect(result.waited).toBe(true);
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
    // It settles when the reset arrives, not at the 5 s deadline.
    expect(result.timedOut).toBe(false);
    expect(result.elapsedMs).toBeLessThan(3000);
  });

  it('reading slowly, gracefulShutdown: the close settles abortive, well before its timeout', async () => {
    const { client, peer } = await connect({ read: 'slow', slowBytes: 64 * 1024 });
    client.write(randomBytes(PAYLOAD));
    setTimeout(() => process.kill(peer.pid, 'SIGKILL'), 300);
    const { result, maxStallMs } = await closeWatched(
      'gracefulShutdown', () => gracefulShutdown(client, { timeout: 5000 }), 7000);
    expect(result).toMatchObject({ type: 'abortive', waited: true, timedOut: false });
    expect(result.elapsedMs).toBeLessThan(3000);
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
  });

  it('reading slowly, closeSocket with linger 5: abortive, never a claimed FIN', async () => {
    const { client, peer } = await connect({ read: 'slow', slowBytes: 64 * 1024 });
    setLinger(client, true, 5);
    client.write(randomBytes(PAYLOAD));
    setTimeout(() => process.kill(peer.pid, 'SIGKILL'), 300);
    const { result, maxStallMs } = await closeWatched('closeSocket', () => closeSocket(client), 7000);
    expect(result.type).toBe('abortive');
    expect(result.waited).toBe(true);
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
  });

  it('reading, killed after it read everything: its kernel FINs; gracefulShutdown reports graceful', async () => {
    const { client, peer } = await connect({ read: 'all', onEof: 'none' });
    const data = randomBytes(256 * 1024);
    client.write(data);
    const closing = closeWatched('gracefulShutdown', () => gracefulShutdown(client, { timeout: 5000 }), 7000);
    // Wait until the peer has every byte and our FIN, then kill it: an empty
    // receive queue, so its kernel ends the connection with a FIN.
    expect(await peer.next('end', 5000)).toMatchObject({ bytes: data.length, sha256: sha256(data), how: 'FIN' });
    process.kill(peer.pid, 'SIGKILL');
    const { result, maxStallMs } = await closing;
    expect(result).toMatchObject({ type: 'graceful', waited: true, timedOut: false });
    expect(result.elapsedMs).toBeLessThan(3000);
    expect(maxStallMs).toBeLessThan(MAX_STALL_MS);
  });
});
