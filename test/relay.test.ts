// relay(): python3 raw-socket ends on both sides, judged by what their
// recv() returned (b'' = FIN, ConnectionResetError = RST), byte-exact.
import { describe, expect, it } from 'vitest';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { getEventListeners, once } from 'node:events';
import { relay, setLinger, type RelayResult } from '../dist/index.js';
import { relayWithFaults, type RelayFaults } from '../dist/relay.js';
import * as path from 'node:path';
import { delay, fixtures, pyEnd, runProcess, until, type PyEnd } from './helpers';

interface Relayed {
  client: PyEnd; target: PyEnd; a: net.Socket; b: net.Socket;
  result: Promise<RelayResult | null>; server: net.Server;
}

/** A naive proxy, as users write it: pipe both ways, destroy the other side on an error. */
function naive(a: net.Socket, b: net.Socket): Promise<null> {
  a.pipe(b); b.pipe(a);
  a.on('error', () => b.destroy()); b.on('error', () => a.destroy());
  const closed = (s: net.Socket) => new Promise<void>((resolve) => s.on('close', () => resolve()));
  return Promise.all([closed(a), closed(b)]).then(() => null);
}

/** python client -> node server (a) | relay | node client (b) -> python target. */
async function relayed(options: {
  host?: string; naive?: boolean; idleTimeout?: number; signal?: AbortSignal; rcvbuf?: number; flushTimeout?: number;
  /** Faults as socket-linger proxy injects them (a is the client, b the target). */
  faults?: RelayFaults;
} = {}): Promise<Relayed> {
  const host = options.host ?? '127.0.0.1';
  const target = pyEnd({ listen: true, host });
  const { port: targetPort } = await target.next('listening');
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = pyEnd({ host, port: (server.address() as net.AddressInfo).port, rcvbuf: options.rcvbuf });
  const [a] = (await accepted) as [net.Socket];
  const b = net.connect(targetPort as number, host);
  await once(b, 'connect');
  await Promise.all([client.next('connected'), target.next('connected')]);
  const relayOptions = { idleTimeout: options.idleTimeout, signal: options.signal, flushTimeout: options.flushTimeout };
  const result = options.naive ? naive(a, b)
    : options.faults ? relayWithFaults(a, b, relayOptions, options.faults) : relay(a, b, relayOptions);
  return { client, target, a, b, result, server };
}

function cleanup(r: Relayed) {
  r.client.kill(); r.target.kill(); r.server.close();
}

describe('relay()', () => {
  it('half-close from the client: its FIN reaches the target after every byte, the other direction keeps flowing', async () => {
    const r = await relayed();
    try {
      r.client.command('send 100000'); r.client.command('shutwr');
      const fin = await r.target.next('fin');
      expect(fin).toMatchObject({ bytes: 100000, ok: true, rst: false });
      r.target.command('send 300000'); r.target.command('shutwr');
      const clientFin = await r.client.next('fin');
      expect(clientFin).toMatchObject({ bytes: 300000, ok: true, rst: false });
      r.client.command('quit'); r.target.command('quit');
      const result = (await r.result)!;
      expect(result).toMatchObject({ aToB: { bytes: 100000, ending: 'FIN' }, bToA: { bytes: 300000, ending: 'FIN' }, reason: 'closed', by: null });
      expect(result.elapsedMs).toBeGreaterThan(0);
      // It resolves once both sockets are closed.
      expect(r.a.destroyed && r.b.destroyed).toBe(true);
    } finally { cleanup(r); }
  });

  it('half-close from the target: the client keeps sending after it got the FIN', async () => {
    const r = await relayed();
    try {
      r.target.command('send 70000'); r.target.command('shutwr');
      expect(await r.client.next('fin')).toMatchObject({ bytes: 70000, ok: true, rst: false });
      r.client.command('send 500000'); r.client.command('shutwr');
      expect(await r.target.next('fin')).toMatchObject({ bytes: 500000, ok: true, rst: false });
      r.client.command('quit'); r.target.command('quit');
      expect(await r.result).toMatchObject({ aToB: { bytes: 500000, ending: 'FIN' }, bToA: { bytes: 70000, ending: 'FIN' }, reason: 'closed' });
    } finally { cleanup(r); }
  });

  for (const mode of ['relay', 'naive'] as const) {
    it(`the target's RST after N bytes reaches a slow client as an RST after all N bytes (${mode})`, async () => {
      const r = await relayed({ naive: mode === 'naive' });
      try {
        const N = 300_000;
        r.client.command('pause');
        r.target.command(`send ${N}`);
        await r.target.next('sent');
        await until(() => r.b.bytesRead === N);
        r.target.command('reset');
        await delay(200);
        r.client.command('resume');
        const seen = await Promise.race([r.client.next('rst'), r.client.next('fin')]);
        if (mode === 'relay') {
          expect(seen).toMatchObject({ event: 'rst', bytes: N, ok: true, fin: false });
          expect(await r.result).toMatchObject({ bToA: { bytes: N, ending: 'RST' }, aToB: { bytes: 0, ending: 'RST' }, reason: 'reset', by: 'b' });
        } else {
          // The naive proxy lies: the client is told the stream ended normally.
          expect(seen).toMatchObject({ event: 'fin', rst: false });
        }
      } finally { cleanup(r); }
    });
  }

  for (const mode of ['relay', 'naive'] as const) {
    it(`the client's RST after N bytes reaches the target as an RST after all N bytes (${mode})`, async () => {
      const r = await relayed({ naive: mode === 'naive' });
      try {
        const N = 123_457;
        r.client.command(`send ${N}`);
        await r.client.next('sent');
        await until(() => r.a.bytesRead === N);
        r.client.command('reset');
        const seen = await Promise.race([r.target.next('rst'), r.target.next('fin')]);
        if (mode === 'relay') {
          expect(seen).toMatchObject({ event: 'rst', bytes: N, ok: true });
          expect(await r.result).toMatchObject({ aToB: { bytes: N, ending: 'RST' }, reason: 'reset', by: 'a' });
        } else {
          expect(seen).toMatchObject({ event: 'fin', bytes: N });
        }
      } finally { cleanup(r); }
    });
  }

  it('an RST after a half-close: the FIN went on, then the RST', async () => {
    const r = await relayed();
    try {
      r.client.command('send 1000'); r.client.command('shutwr');
      expect(await r.target.next('fin')).toMatchObject({ bytes: 1000, ok: true });
      r.target.command('send 5000');
      await until(() => r.b.bytesRead === 5000);
      r.target.command('reset');
      expect(await r.client.next('rst')).toMatchObject({ bytes: 5000, ok: true });
      expect(await r.result).toMatchObject({ aToB: { bytes: 1000, ending: 'FIN' }, bToA: { bytes: 5000, ending: 'RST' }, by: 'b' });
    } finally { cleanup(r); }
  });

  it('IPv6 on both sides', async () => {
    const r = await relayed({ host: '::1' });
    try {
      r.client.command('send 4096'); r.client.command('shutwr');
      expect(await r.target.next('fin')).toMatchObject({ bytes: 4096, ok: true });
      r.target.command('send 8192');
      await until(() => r.b.bytesRead === 8192);
      r.target.command('reset');
      expect(await r.client.next('rst')).toMatchObject({ bytes: 8192, ok: true });
    } finally { cleanup(r); }
  });

  it('a slow reader: 64 MiB pass with the relay holding well under 1 MiB', async () => {
    const r = await relayed();
    try {
      const N = 64 * 1024 * 1024;
      let most = 0;
      const sampler = setInterval(() => { most = Math.max(most, r.a.writableLength + r.b.readableLength); }, 1);
      r.client.command('slow 262144 4');
      r.target.command(`send ${N}`); r.target.command('shutwr');
      const fin = await r.client.next('fin', 60_000);
      clearInterval(sampler);
      expect(fin).toMatchObject({ bytes: N, ok: true });
      expect(most).toBeLessThan(1024 * 1024);
      r.client.command('shutwr');
      expect(await r.result).toMatchObject({ bToA: { bytes: N, ending: 'FIN' }, aToB: { bytes: 0, ending: 'FIN' } });
    } finally { cleanup(r); }
  }, 90_000);

  it('idleTimeout resets both sides', async () => {
    const r = await relayed({ idleTimeout: 300 });
    try {
      r.client.command('send 10');
      const [c, t] = await Promise.all([r.client.next('rst'), r.target.next('rst')]);
      expect(t).toMatchObject({ bytes: 10, ok: true });
      expect(c.bytes).toBe(0);
      expect(await r.result).toMatchObject({ reason: 'idle', aToB: { ending: 'RST' }, bToA: { ending: 'RST' } });
    } finally { cleanup(r); }
  });

  it('an abort signal resets both sides', async () => {
    const controller = new AbortController();
    const r = await relayed({ signal: controller.signal });
    try {
      controller.abort();
      await Promise.all([r.client.next('rst'), r.target.next('rst')]);
      expect(await r.result).toMatchObject({ reason: 'aborted' });
    } finally { cleanup(r); }
  });

  it('TLS on the client side: bytes, FIN and RST pass through the TLS socket', async () => {
    for (const ending of ['FIN', 'RST'] as const) {
      const target = pyEnd({ listen: true });
      const { port } = await target.next('listening');
      const server = tls.createServer({ key: fixtures.key, cert: fixtures.cert });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const accepted = once(server, 'secureConnection');
      const client = tls.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
      client.allowHalfOpen = true;
      const [a] = (await accepted) as [tls.TLSSocket];
      const b = net.connect(port as number, '127.0.0.1');
      await once(b, 'connect');
      const result = relay(a, b);
      let got = 0;
      client.on('data', (d: Buffer) => { got += d.length; });
      const outcome = new Promise<string>((resolve) => {
        client.on('end', () => resolve('FIN'));
        client.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      client.write(Buffer.alloc(5000, 1));
      client.end();
      expect(await target.next('fin')).toMatchObject({ bytes: 5000, fin: true });
      target.command('send 200000');
      await until(() => b.bytesRead === 200000);
      target.command(ending === 'FIN' ? 'shutwr' : 'reset');
      expect(await outcome).toBe(ending === 'FIN' ? 'FIN' : 'ECONNRESET');
      expect(got).toBe(200000);
      if (ending === 'FIN') target.command('quit');
      expect(await result).toMatchObject({ aToB: { bytes: 5000, ending: 'FIN' }, bToA: { bytes: 200000, ending } });
      target.kill(); server.close(); client.destroy();
    }
  });

  it('a signal aborted before the call resets both sides at once', async () => {
    const r = await relayed({ signal: AbortSignal.abort() });
    try {
      const [c, t] = await Promise.all([r.client.next('rst'), r.target.next('rst')]);
      expect([c.bytes, t.bytes]).toEqual([0, 0]);
      expect(await r.result).toMatchObject({ reason: 'aborted', by: null, aToB: { bytes: 0, ending: 'RST' }, bToA: { bytes: 0, ending: 'RST' } });
    } finally { cleanup(r); }
  });

  it('a fault after 0 bytes acts before any byte: RST to both, or a FIN to the client while it can still send', async () => {
    const r = await relayed({ faults: { bToAAfter: { bytes: 0, then: 'RST' } } });
    try {
      const [c, t] = await Promise.all([r.client.next('rst'), r.target.next('rst')]);
      expect([c.bytes, t.bytes]).toEqual([0, 0]);
      expect(await r.result).toMatchObject({ reason: 'fault', bToA: { bytes: 0, ending: 'RST' }, aToB: { bytes: 0, ending: 'RST' } });
    } finally { cleanup(r); }
    const f = await relayed({ faults: { bToAAfter: { bytes: 0, then: 'FIN' } } });
    try {
      expect(await f.client.next('fin')).toMatchObject({ bytes: 0, rst: false });
      f.client.command('send 2000'); f.client.command('shutwr');
      expect(await f.target.next('fin')).toMatchObject({ bytes: 2000, ok: true, rst: false });
    } finally { cleanup(f); }
  });

  it('a TLS error on one side (a client that speaks no TLS) resets the other side: reason error', async () => {
    const target = pyEnd({ listen: true });
    const { port } = await target.next('listening');
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const client = pyEnd({ port: (server.address() as net.AddressInfo).port });
    const [raw] = (await accepted) as [net.Socket];
    const a = new tls.TLSSocket(raw, { isServer: true, key: fixtures.key, cert: fixtures.cert });
    const b = net.connect(port as number, '127.0.0.1');
    await once(b, 'connect');
    try {
      const result = relay(a, b);
      client.command('send 300');
      expect(await target.next('rst')).toMatchObject({ bytes: 0 });
      const r = await result;
      expect(r).toMatchObject({ reason: 'error', by: 'a', aToB: { bytes: 0, ending: 'RST' }, bToA: { ending: 'RST' } });
      expect((r.error as NodeJS.ErrnoException).code).toMatch(/^ERR_SSL_/);
    } finally { client.kill(); target.kill(); server.close(); }
  });

  for (const [code, reason] of [['ECONNRESET', 'reset'], ['EPIPE', 'reset'], ['ECONNABORTED', 'reset'], ['ETIMEDOUT', 'error']] as const) {
    it(`a side failing with ${code}: the other side gets every byte, then an RST (reason ${reason})`, async () => {
      const r = await relayed();
      try {
        r.target.command('send 5000');
        await until(() => r.b.bytesRead === 5000);
        const error = Object.assign(new Error(`failed ${code}`), { code });
        r.b.destroy(error);
        expect(await r.client.next('rst')).toMatchObject({ bytes: 5000, ok: true });
        expect(await r.result).toMatchObject({ reason, by: 'b', error, bToA: { bytes: 5000, ending: 'RST' }, aToB: { ending: 'RST' } });
      } finally { cleanup(r); }
    });
  }

  for (const side of ['a', 'b'] as const) {
    it(`the application destroys ${side}: the other end gets every byte it sent, then a FIN; what it sends next is refused`, async () => {
      const r = await relayed();
      try {
        // from: the end whose socket the application destroys; to: the other end.
        const [from, to, socket] = side === 'a' ? [r.client, r.target, r.a] : [r.target, r.client, r.b];
        from.command('send 3000');
        await until(() => socket.bytesRead === 3000);
        socket.destroy();
        const seen = await Promise.race([to.next('fin'), to.next('rst')]);
        expect(seen).toMatchObject({ event: 'fin', bytes: 3000, ok: true });
        const result = await r.result;
        const [sent, other] = side === 'a' ? ['aToB', 'bToA'] as const : ['bToA', 'aToB'] as const;
        expect(result).toMatchObject({ [sent]: { bytes: 3000, ending: 'FIN' }, [other]: { bytes: 0, ending: 'RST' }, reason: 'reset', by: null, error: null });
        expect(r.a.destroyed && r.b.destroyed).toBe(true);
        // Nothing can reach the destroyed side any more: the other end was reset after its FIN.
        to.command('send 100000');
        expect(await to.next('rst')).toMatchObject({ bytes: 3000 });
      } finally { cleanup(r); }
    });
  }

  it('flushTimeout: the RST toward a client that never reads waits that long, then goes anyway', async () => {
    const r = await relayed({ flushTimeout: 400, rcvbuf: 4096 });
    try {
      r.client.command('pause');
      // Little enough that the relay takes all of it (it keeps reading the
      // target, so it sees the RST), more than the client's window holds.
      r.target.command('send 20000');
      await until(() => r.b.bytesRead === 20000);
      await delay(100);
      const started = Date.now();
      r.target.command('reset');
      const result = await Promise.race([r.result, delay(5000).then(() => null)]);
      expect(result).toMatchObject({ reason: 'reset', by: 'b', bToA: { ending: 'RST' } });
      expect(Date.now() - started).toBeGreaterThanOrEqual(350);
      r.client.command('resume');
      const seen = await r.client.next('rst');
      expect(seen.bytes).toBeLessThan(result!.bToA.bytes);
    } finally { cleanup(r); }
  });

  it('latency fault: every byte arrives, in order, no sooner than the latency; each FIN after its bytes', async () => {
    const r = await relayed({ faults: { latencyMs: 1000 } });
    try {
      const started = Date.now();
      r.target.command('send 200000'); r.target.command('shutwr');
      await until(() => r.b.bytesRead === 200000);
      // Read by the relay, not yet passed on: the client has nothing.
      r.client.command('report');
      expect(await r.client.next('report')).toMatchObject({ bytes: 0 });
      expect(await r.client.next('fin')).toMatchObject({ bytes: 200000, ok: true, rst: false });
      expect(Date.now() - started).toBeGreaterThanOrEqual(990);
      r.client.command('send 3000'); r.client.command('shutwr');
      expect(await r.target.next('fin')).toMatchObject({ bytes: 3000, ok: true, rst: false });
      r.client.command('quit'); r.target.command('quit');
      expect(await r.result).toMatchObject({ aToB: { bytes: 3000, ending: 'FIN' }, bToA: { bytes: 200000, ending: 'FIN' }, reason: 'closed' });
    } finally { cleanup(r); }
  });

  it('latency fault with a client that does not read: the relay stops reading the target (memory stays bounded)', async () => {
    const r = await relayed({ faults: { latencyMs: 20 } });
    try {
      const N = 64 * 1024 * 1024;
      r.client.command('pause');
      r.target.command(`send ${N}`);
      await delay(1500);
      // What the relay holds: its latency queue and Node's buffer toward the client.
      expect(r.b.bytesRead - r.a.bytesWritten + r.a.writableLength).toBeLessThan(8 * 1024 * 1024);
      expect(r.b.bytesRead).toBeLessThan(N / 2);
      r.client.command('resume');
      r.target.command('shutwr');
      expect(await r.client.next('fin', 60_000)).toMatchObject({ bytes: N, ok: true });
    } finally { cleanup(r); }
  }, 90_000);

  for (const linger of [0, 2] as const) {
    it(`lingerCloseA with SO_LINGER {on, ${linger}}: the target's FIN reaches the client as ${linger ? 'a FIN (it acknowledges)' : 'an RST'} after every byte`, async () => {
      const r = await relayed({ faults: { lingerCloseA: true } });
      try {
        setLinger(r.a, true, linger);
        r.target.command('send 40000'); r.target.command('shutwr');
        const seen = await Promise.race([r.client.next('fin'), r.client.next('rst')]);
        expect(seen).toMatchObject({ event: linger ? 'fin' : 'rst', bytes: 40000, ok: true });
        if (linger) r.client.command('shutwr');
        const result = await r.result;
        expect(result).toMatchObject({ bToA: { bytes: 40000, ending: linger ? 'FIN' : 'RST' } });
        expect(r.a.destroyed && r.b.destroyed).toBe(true);
      } finally { cleanup(r); }
    });
  }

  it('lingerCloseA changes only closes toward the client: a half-close toward the target stays a half-close', async () => {
    const r = await relayed({ faults: { lingerCloseA: true } });
    try {
      setLinger(r.a, true, 2);
      r.client.command('send 1000'); r.client.command('shutwr');
      expect(await r.target.next('fin')).toMatchObject({ bytes: 1000, ok: true });
      r.target.command('send 30000'); r.target.command('shutwr');
      expect(await r.client.next('fin')).toMatchObject({ bytes: 30000, ok: true, rst: false });
      expect(await r.result).toMatchObject({ aToB: { bytes: 1000, ending: 'FIN' }, bToA: { bytes: 30000, ending: 'FIN' }, reason: 'closed' });
    } finally { cleanup(r); }
  });

  it('delayCloseA holds back a FIN toward the client', async () => {
    const r = await relayed({ faults: { delayCloseA: 600 } });
    try {
      r.target.command('send 1000'); r.target.command('shutwr');
      await until(() => r.b.readableEnded);
      const started = Date.now();
      expect(await r.client.next('fin')).toMatchObject({ bytes: 1000, ok: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    } finally { cleanup(r); }
  });

  it("rstOnFinFromB: the target's FIN reaches a slow client as an RST after every byte; the target gets a FIN, and nothing the client sends after", async () => {
    const r = await relayed({ faults: { rstOnFinFromB: true }, rcvbuf: 4096 });
    try {
      r.client.command('pause');
      r.target.command('send 100000'); r.target.command('shutwr');
      await until(() => r.b.readableEnded);
      r.client.command('send 5000');
      await until(() => r.a.bytesRead === 5000);
      expect(await r.target.next('fin')).toMatchObject({ bytes: 0, rst: false });
      r.client.command('resume');
      expect(await r.client.next('rst')).toMatchObject({ bytes: 100000, ok: true });
      expect(await r.result).toMatchObject({ reason: 'fault', by: null, bToA: { bytes: 100000, ending: 'RST' }, aToB: { bytes: 0, ending: 'FIN' } });
    } finally { cleanup(r); }
  });

  it('a byte limit reached exactly at the end of a chunk acts then: the client gets every byte, then an RST, with the target still open', async () => {
    const r = await relayed({ faults: { bToAAfter: { bytes: 1000, then: 'RST' } } });
    try {
      // The target sends exactly the limit and nothing after: no later chunk can trigger the cut.
      r.target.command('send 1000');
      const [c, t] = await Promise.all([r.client.next('rst'), r.target.next('rst')]);
      expect(c).toMatchObject({ bytes: 1000, ok: true, fin: false });
      expect(t).toMatchObject({ bytes: 0, fin: false });
      expect(await r.result).toMatchObject({ reason: 'fault', bToA: { bytes: 1000, ending: 'RST' } });
    } finally { cleanup(r); }
  });

  it('a byte-limit RST after the client half-closed: the target got the FIN after every byte, then both are reset; aToB stays FIN', async () => {
    const r = await relayed({ faults: { bToAAfter: { bytes: 1000, then: 'RST' } } });
    try {
      r.client.command('send 3000'); r.client.command('shutwr');
      expect(await r.target.next('fin')).toMatchObject({ bytes: 3000, ok: true, rst: false });
      r.target.command('send 5000');
      expect(await r.client.next('rst')).toMatchObject({ bytes: 1000, ok: true, fin: false });
      expect(await r.result).toMatchObject({ reason: 'fault', aToB: { bytes: 3000, ending: 'FIN' }, bToA: { bytes: 1000, ending: 'RST' } });
    } finally { cleanup(r); }
  });

  it('idleTimeout after the client half-closed: the target got the FIN after every byte, then both are reset; aToB stays FIN', async () => {
    const r = await relayed({ idleTimeout: 400 });
    try {
      r.client.command('send 2000'); r.client.command('shutwr');
      expect(await r.target.next('fin')).toMatchObject({ bytes: 2000, ok: true, rst: false });
      expect(await r.client.next('rst')).toMatchObject({ bytes: 0, fin: false });
      expect(await r.result).toMatchObject({ reason: 'idle', aToB: { bytes: 2000, ending: 'FIN' }, bToA: { bytes: 0, ending: 'RST' } });
      // The target was reset too: its next send fails.
      r.target.command('send 1');
      expect(await r.target.next('rst')).toMatchObject({ bytes: 2000 });
    } finally { cleanup(r); }
  });

  it("the client's RST after its own FIN: the target got the FIN after every byte, then (once the relay writes to the client) an RST; aToB stays FIN", async () => {
    const r = await relayed();
    try {
      r.client.command('send 4000'); r.client.command('shutwr');
      expect(await r.target.next('fin')).toMatchObject({ bytes: 4000, ok: true, rst: false });
      r.client.command('reset');
      await r.client.done;
      // A half-closed socket nobody writes to does not see the RST (libuv stopped
      // reading at the FIN): the target's next bytes make the relay write, and fail.
      r.target.command('send 1000');
      expect(await r.result).toMatchObject({ reason: 'reset', by: 'a', aToB: { bytes: 4000, ending: 'FIN' }, bToA: { ending: 'RST' } });
      // The target was reset (not sent a FIN): its next send fails.
      r.target.command('send 1');
      expect(await r.target.next('rst')).toMatchObject({ bytes: 4000, fin: true });
    } finally { cleanup(r); }
  });

  it('an abort while an RST waits for a target that does not read (the client already gone) resets the target now', async () => {
    const controller = new AbortController();
    const r = await relayed({ signal: controller.signal, flushTimeout: 60_000 });
    try {
      r.target.command('pause');
      r.client.command('send 16000000');
      await until(() => r.b.writableLength > 0 && r.a.bytesRead > 1_000_000, 10_000, () => `a read ${r.a.bytesRead}, b holds ${r.b.writableLength}`);
      r.client.command('reset');
      await r.client.done;
      // The relay has stopped reading the client (backpressure): bytes toward it show it the RST.
      r.target.command('send 100');
      // The client's side is closed; the target's RST waits for bytes it will not read.
      await until(() => r.a.destroyed, 10_000, () => 'a destroyed');
      await delay(200);
      controller.abort();
      await delay(200);
      // Still not reading: only a send shows the RST (a flushed-then-reset target would still be open).
      r.target.command('send 1');
      expect(await r.target.next('rst', 5000)).toMatchObject({ fin: false });
      expect(await r.result).toMatchObject({ reason: 'aborted', by: null, aToB: { ending: 'RST' }, bToA: { ending: 'RST' } });
    } finally { cleanup(r); }
  });

  it('latency fault: the target resets while its bytes are held; the client gets every byte, then the RST', async () => {
    const r = await relayed({ faults: { latencyMs: 500 }, flushTimeout: 4000 });
    try {
      r.target.command('send 5000');
      await until(() => r.b.bytesRead === 5000);
      r.target.command('reset');
      // Before the fix: the held bytes were dropped, and the RST waited out flushTimeout.
      expect(await r.client.next('rst', 3000)).toMatchObject({ bytes: 5000, ok: true, fin: false });
      expect(await r.result).toMatchObject({ reason: 'reset', by: 'b', bToA: { bytes: 5000, ending: 'RST' } });
    } finally { cleanup(r); }
  });

  it('latency fault: the client resets while its bytes are held; the target gets every byte, then the RST', async () => {
    const r = await relayed({ faults: { latencyMs: 500 }, flushTimeout: 4000 });
    try {
      r.client.command('send 7000');
      await until(() => r.a.bytesRead === 7000);
      r.client.command('reset');
      expect(await r.target.next('rst', 3000)).toMatchObject({ bytes: 7000, ok: true, fin: false });
      expect(await r.result).toMatchObject({ reason: 'reset', by: 'a', aToB: { bytes: 7000, ending: 'RST' } });
    } finally { cleanup(r); }
  });

  // A Node child that relays one connection and must exit once it is over: a
  // timer left behind (idleTimeout, the latency queue) would hold it for a minute.
  const relayChild = (faults: string, body: string) => runProcess(process.execPath, ['-e', `
    const net = require('node:net');
    const { relayWithFaults } = require(${JSON.stringify(path.resolve(__dirname, '../dist/relay.js'))});
    const target = net.createServer((t) => { ${body} });
    target.listen(0, '127.0.0.1', () => {
      const server = net.createServer((a) => {
        const b = net.connect(target.address().port, '127.0.0.1', () => {
          relayWithFaults(a, b, { idleTimeout: 60000 }, ${faults}).then((r) => {
            console.log(JSON.stringify(r)); server.close(); target.close();
          });
        });
      }).listen(0, '127.0.0.1', () => {
        const c = net.connect(server.address().port, '127.0.0.1', () => c.end('x'));
        c.on('data', () => {}); c.on('end', () => c.end()); c.on('error', () => {});
      });
    });`], 20_000);

  it('a finished relay leaves no timer behind: its process exits (idleTimeout; a latency queue toward a target that reset)', async () => {
    // Both ends close with FINs: the idle timer must go.
    const fins = await relayChild('{}', "t.on('data', () => {}); t.on('end', () => t.end());");
    expect(fins.code).toBe(0);
    expect(JSON.parse(fins.stdout)).toMatchObject({ reason: 'closed', aToB: { bytes: 1, ending: 'FIN' } });
    // The target resets while the client's byte waits 30 s in the latency queue.
    const held = await relayChild('{ latencyMs: 30000 }', 'setTimeout(() => t.resetAndDestroy(), 200);');
    expect(held.code).toBe(0);
    expect(JSON.parse(held.stdout)).toMatchObject({ reason: 'reset', by: 'b' });
  }, 60_000);

  it('a signal that never aborts: both FINs pass, and the relay leaves no listener on it', async () => {
    const controller = new AbortController();
    const r = await relayed({ signal: controller.signal });
    try {
      r.client.command('send 500'); r.client.command('shutwr');
      expect(await r.target.next('fin')).toMatchObject({ bytes: 500, ok: true, rst: false });
      r.target.command('shutwr');
      expect(await r.client.next('fin')).toMatchObject({ bytes: 0, rst: false });
      expect(await r.result).toMatchObject({ reason: 'closed' });
      // A long-lived signal shared by many relays must not collect their listeners.
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    } finally { cleanup(r); }
  });

  it('validates its arguments with Node error codes and messages that name them, before any effect', async () => {
    const s = new net.Socket();
    const t = new net.Socket();
    await expect(relay(1 as never, s)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/^The "a" argument must be /) });
    await expect(relay(s, 1 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/^The "b" argument must be /) });
    await expect(relay(s, s)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE', message: "The argument 'b' must be a different socket from a. Received '<the same socket as a>'",
    });
    await expect(relay(s, t, { idleTimeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('"options.idleTimeout"') });
    await expect(relay(s, t, { flushTimeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('"options.flushTimeout"') });
    await expect(relay(s, t, { flushTimeout: '1' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('"options.flushTimeout"') });
    await expect(relay(s, t, { signal: {} as never })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_TYPE', message: 'The "options.signal" argument must be an instance of AbortSignal. Received an instance of Object',
    });
    for (const options of [5, null]) {
      // Settles at once (a relay started on two unconnected sockets would stay pending).
      const settled = await Promise.race([relay(s, t, options as never).catch((e: unknown) => e), delay(1000).then(() => 'pending')]);
      expect(settled).toMatchObject({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringMatching(/^The "options" argument must be of type object\. Received /) });
    }
    expect(s.allowHalfOpen).toBe(false);
    expect(t.allowHalfOpen).toBe(false);
    s.destroy();
    await expect(relay(s, t)).rejects.toMatchObject({ code: 'ERR_SOCKET_CLOSED' });
    t.destroy();
  });
});
