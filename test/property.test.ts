// Property-based: random sequences of every public call, with random
// arguments (valid and not: wrong types, NaN, huge numbers, strings,
// undefined, symbols, objects), on live, half-closed, closing, closed,
// connecting, TLS and pipe sockets and on servers, interleaved with what the
// peers do. Whatever the sequence:
// - nothing crashes, nothing is thrown or emitted unhandled;
// - every error thrown or rejected is one the README documents (by code and
//   class), or a system error with errno and syscall;
// - the promise functions never throw synchronously, and every promise
//   settles (at the latest once the run's sockets are destroyed);
// - results have the documented shapes;
// - a bystander connection, created right after a socket of the run was
//   destroyed (so it usually holds that socket's old descriptor numbers), is
//   never affected: its linger, its kernel state and a byte stream through it
//   stay intact;
// - the event loop never stalls.
// PROPERTY_RUNS (default 100) sets the number of runs; PROPERTY_SEED replays one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fc from 'fast-check';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { EventEmitter, once } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  abortiveClose, closeSocket, getLinger, getTcpInfo, gracefulShutdown, LINGER_MAX_SECONDS,
  setLinger, shutdown, type CloseResult,
} from '../dist/index.js';
import { fixtures } from './helpers';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 100);
const SEED = process.env.PROPERTY_SEED === undefined ? undefined : Number(process.env.PROPERTY_SEED);

const DOCUMENTED: Record<string, ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor> = {
  ERR_INVALID_ARG_TYPE: TypeError,
  ERR_INVALID_ARG_VALUE: TypeError,
  ERR_OUT_OF_RANGE: RangeError,
  ERR_SOCKET_CLOSED: Error,
  ERR_INVALID_HANDLE_TYPE: TypeError,
};
const TCP_STATES = new Set([
  'CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'FIN_WAIT_1', 'FIN_WAIT_2',
  'CLOSE_WAIT', 'CLOSING', 'LAST_ACK', 'TIME_WAIT',
]);

/** null when the error is one the API documents; else what is wrong with it. */
function undocumented(error: unknown): string | null {
  if (!(error instanceof Error)) return `not an Error: ${String(error)}`;
  const { code, errno, syscall } = error as NodeJS.ErrnoException;
  if (typeof code === 'string' && code in DOCUMENTED)
    return error instanceof DOCUMENTED[code] ? null : `${code} is a ${error.constructor.name}`;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) && typeof errno === 'number' && errno < 0 &&
      typeof syscall === 'string' && syscall.length > 0)
    return null;
  return `undocumented error: ${error.constructor.name} code=${String(code)} errno=${String(errno)} ` +
    `syscall=${String(syscall)}: ${error.message}`;
}

// ---------------------------------------------------------------------------
// Arguments.

/** A named socket or server of the run. */
class Ref {
  constructor(readonly name: TargetName) {}
  toString() { return `<${this.name}>`; }
}

const TARGETS = [
  'live', 'halfWrite', 'halfRead', 'ended', 'closing', 'shutting', 'closed', 'connecting',
  'peer', 'closingPeer', 'tls', 'pipe', 'server', 'idleServer', 'closedServer',
] as const;
type TargetName = typeof TARGETS[number];
const PAIRS = ['live', 'halfWrite', 'halfRead', 'ended', 'closing', 'shutting', 'tls'] as const;
type PairName = typeof PAIRS[number];

const junk = fc.oneof(
  fc.constantFrom<unknown>(
    undefined, null, NaN, Infinity, -Infinity, -0, 0, 1, -1, 0.5, 2 ** 31, 2 ** 32, 2 ** 53,
    Number.MAX_VALUE, Number.MIN_VALUE, '', '1', 'read', 'write', 'both', 'READ', 'true', true, false,
    Symbol('junk'), Symbol.iterator, 10n, -1n, [], {}, [1, 2], new Date(0), Object.create(null),
    () => {}, function named() {}, new EventEmitter(), { _handle: { fd: 0 } }, { fd: 3 },
    { enabled: true, seconds: 1 },
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.object({ maxDepth: 1, maxKeys: 3 }),
  fc.array(fc.anything({ maxDepth: 1 }), { maxLength: 3 }),
  fc.constant(null).map(() => Object.create(net.Server.prototype) as unknown),
  // An object that passes `instanceof net.Socket` without ever having been constructed.
  fc.constant(null).map(() => Object.create(net.Socket.prototype) as unknown),
);

const target = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...TARGETS).map((name) => new Ref(name) as unknown) },
  { weight: 1, arbitrary: junk },
);
const enabled = fc.oneof({ weight: 3, arbitrary: fc.boolean() as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: junk });
const seconds = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 3 }) as fc.Arbitrary<unknown> },
  {
    weight: 2,
    arbitrary: fc.constantFrom<unknown>(
      LINGER_MAX_SECONDS, LINGER_MAX_SECONDS + 1, 65_535, 65_536, 2 ** 31 - 1, 2 ** 31, 2 ** 32, -1, -0, 1.5,
      NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER,
    ),
  },
  { weight: 1, arbitrary: junk },
);
const how = fc.oneof({ weight: 3, arbitrary: fc.constantFrom<unknown>('read', 'write', 'both') }, { weight: 1, arbitrary: junk });
const signal = fc.oneof(
  fc.constantFrom('aborted', 'soon', 'never'),
  junk,
);
const timeout = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 300 }) as fc.Arbitrary<unknown> },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(2 ** 31 - 1, 2 ** 31, -1, NaN, Infinity, 1.5, -0, '100') },
  { weight: 1, arbitrary: junk },
);
/** Options: missing, junk, or an object with a random timeout and/or signal. */
const options = fc.oneof(
  { weight: 2, arbitrary: fc.constant<unknown>(undefined) },
  { weight: 1, arbitrary: junk },
  {
    weight: 3,
    arbitrary: fc.record({ timeout, signal }, { requiredKeys: [] }).map((o) => ({ ...o, isOptions: true }) as unknown),
  },
);

const call = fc.oneof(
  fc.record({ fn: fc.constant('setLinger' as const), target, enabled, seconds, argc: fc.oneof({ weight: 1, arbitrary: fc.integer({ min: 0, max: 2 }) }, { weight: 4, arbitrary: fc.constant(3) }) }),
  fc.record({ fn: fc.constant('getLinger' as const), target }),
  fc.record({ fn: fc.constant('shutdown' as const), target, how }),
  fc.record({ fn: fc.constant('closeSocket' as const), target, options }),
  fc.record({ fn: fc.constant('abortiveClose' as const), target }),
  fc.record({ fn: fc.constant('gracefulShutdown' as const), target, options }),
  fc.record({ fn: fc.constant('getTcpInfo' as const), target }),
  // What the application and the peers do meanwhile.
  fc.record({
    fn: fc.constant('act' as const),
    pair: fc.constantFrom(...PAIRS),
    action: fc.constantFrom('peerWrite', 'peerEnd', 'peerResume', 'peerDestroy', 'write', 'end', 'destroy', 'resume'),
  }),
);
type Call = typeof call extends fc.Arbitrary<infer T> ? T : never;

const step = fc.record({
  call,
  // Mostly back to back; sometimes a few ms for the kernel and the peer.
  pauseMs: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 15 }) }),
});

// ---------------------------------------------------------------------------
// A world per run.

interface Pair { client: net.Socket; peer: net.Socket }

interface World {
  server: net.Server;
  pairs: Record<PairName, Pair>;
  targets: Record<TargetName, net.Socket | net.Server>;
  sockets: net.Socket[];
  servers: net.Server[];
  bystander: Pair & { written: ReturnType<typeof createHash>; received: ReturnType<typeof createHash>; sent: number; got: number; reusedFd: boolean };
  pending: { label: string; promise: Promise<unknown>; settled: boolean }[];
  problems: string[];
  emitted: Map<string, number>;
  controllers: AbortController[];
  tornDown: boolean;
}

let pipeServer: net.Server;
let pipePath: string;
let pipeDir: string;
let tlsServer: tls.Server;
let bystanderServer: net.Server;
const unhandled: unknown[] = [];
const onUnhandled = (error: unknown) => { unhandled.push(error); };

beforeAll(async () => {
  process.on('uncaughtException', onUnhandled);
  process.on('unhandledRejection', onUnhandled);
  pipeDir = mkdtempSync(join(tmpdir(), 'socket-linger-prop-'));
  pipePath = join(pipeDir, 'pipe.sock');
  pipeServer = net.createServer((s) => { s.on('error', () => {}); s.resume(); }).listen(pipePath);
  tlsServer = tls.createServer({ ...fixtures, allowHalfOpen: true });
  tlsServer.listen(0, '127.0.0.1');
  bystanderServer = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  bystanderServer.listen(0, '127.0.0.1');
  await Promise.all([once(pipeServer, 'listening'), once(tlsServer, 'listening'), once(bystanderServer, 'listening')]);
});

afterAll(async () => {
  await Promise.all([pipeServer, tlsServer, bystanderServer].map((s) => new Promise((resolve) => s.close(resolve))));
  rmSync(pipeDir, { recursive: true, force: true });
  process.off('uncaughtException', onUnhandled);
  process.off('unhandledRejection', onUnhandled);
});

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd ?? -1;
}

async function tcpPair(server: net.Server, world: World): Promise<Pair> {
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  track(world, client);
  await once(client, 'connect');
  const [peer] = await accepted;
  if (!world.sockets.includes(peer)) track(world, peer);
  return { client, peer };
}

function track(world: World, socket: net.Socket): void {
  world.sockets.push(socket);
  if (world.tornDown) socket.destroy();
  socket.on('error', (error: NodeJS.ErrnoException) => {
    const key = error.code ?? error.constructor.name;
    world.emitted.set(key, (world.emitted.get(key) ?? 0) + 1);
    if (typeof error.code !== 'string') world.problems.push(`socket emitted an error without a code: ${error.message}`);
  });
}

const BIG = Buffer.alloc(6 * 1024 * 1024, 0x6c);

async function makeWorld(): Promise<World> {
  const world = {
    sockets: [], servers: [], pending: [], problems: [], emitted: new Map(), controllers: [],
  } as unknown as World;
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  server.on('connection', (peer: net.Socket) => track(world, peer));
  world.server = server;
  world.servers.push(server);

  // Destroyed first, so the bystander (next) is likely to get its descriptor numbers.
  const doomed = await tcpPair(server, world);
  const doomedFds = [fdOf(doomed.client), fdOf(doomed.peer)];
  doomed.client.destroy();
  doomed.peer.destroy();
  await Promise.all([once(doomed.client, 'close'), once(doomed.peer, 'close')]);

  const b = await tcpPair(bystanderServer, world);
  setLinger(b.client, true, 7);
  setLinger(b.peer, true, 0);
  const received = createHash('sha256');
  world.bystander = {
    ...b, written: createHash('sha256'), received, sent: 0, got: 0,
    reusedFd: doomedFds.includes(fdOf(b.client)) || doomedFds.includes(fdOf(b.peer)),
  };
  b.peer.on('data', (chunk: Buffer) => { received.update(chunk); world.bystander.got += chunk.length; });
  b.peer.resume();

  const pairs = {} as Record<PairName, Pair>;
  for (const name of PAIRS) {
    if (name === 'tls') continue;
    pairs[name] = await tcpPair(server, world);
  }
  {
    const accepted = once(tlsServer, 'secureConnection') as Promise<[tls.TLSSocket]>;
    const client = tls.connect({ port: (tlsServer.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false });
    track(world, client);
    await once(client, 'secureConnect');
    const [peer] = await accepted;
    track(world, peer);
    peer.pause();
    pairs.tls = { client, peer };
  }
  world.pairs = pairs;

  shutdown(pairs.halfWrite.client, 'write');
  shutdown(pairs.halfRead.client, 'read');
  pairs.ended.client.end('bye');
  // A lingering close that cannot finish: the peer does not read.
  setLinger(pairs.closing.client, true, 30);
  pairs.closing.client.write(BIG);
  pending(world, 'setup closeSocket(closing)', closeSocket(pairs.closing.client));
  // A shutdown sequence waiting for the peer's FIN.
  pending(world, 'setup gracefulShutdown(shutting)', gracefulShutdown(pairs.shutting.client, { timeout: 60_000 }));

  const connecting = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  track(world, connecting);
  const pipe = net.connect(pipePath);
  track(world, pipe);
  await once(pipe, 'connect');
  const idleServer = net.createServer();
  const closedServer = net.createServer().listen(0, '127.0.0.1');
  await once(closedServer, 'listening');
  await new Promise((resolve) => closedServer.close(resolve));
  world.servers.push(idleServer, closedServer);

  world.targets = {
    live: pairs.live.client, halfWrite: pairs.halfWrite.client, halfRead: pairs.halfRead.client,
    ended: pairs.ended.client, closing: pairs.closing.client, shutting: pairs.shutting.client,
    closed: doomed.client, connecting, peer: pairs.live.peer, closingPeer: pairs.closing.peer,
    tls: pairs.tls.client, pipe, server, idleServer, closedServer,
  };
  return world;
}

function pending(world: World, label: string, promise: unknown): void {
  if (!(promise instanceof Promise)) {
    world.problems.push(`${label} returned ${String(promise)}, not a promise`);
    return;
  }
  const entry = { label, promise, settled: false };
  world.pending.push(entry);
  promise.then(
    (value) => {
      entry.settled = true;
      count(label, `resolved ${(value as CloseResult)?.type}`);
      const problem = badResult(value);
      if (problem) world.problems.push(`${label} resolved ${problem}`);
    },
    (error) => {
      entry.settled = true;
      count(label, String((error as { code?: unknown })?.code));
      const problem = undocumented(error);
      if (problem) world.problems.push(`${label} rejected: ${problem}`);
    },
  );
}

function badResult(value: unknown): string | null {
  const r = value as CloseResult;
  const ok = r !== null && typeof r === 'object' && (r.type === 'graceful' || r.type === 'abortive') &&
    typeof r.waited === 'boolean' && typeof r.timedOut === 'boolean' &&
    Number.isFinite(r.elapsedMs) && r.elapsedMs >= 0 && (!r.timedOut || r.waited);
  return ok ? null : `with a malformed result ${JSON.stringify(value)}`;
}

function resolveArg(world: World, value: unknown): unknown {
  return value instanceof Ref ? world.targets[value.name] : value;
}

function resolveOptions(world: World, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || !('isOptions' in value)) return value;
  const { timeout: t, signal: s } = value as { timeout?: unknown; signal?: unknown };
  const out: Record<string, unknown> = {};
  if (t !== undefined) out.timeout = t;
  if (s === 'aborted') out.signal = AbortSignal.abort();
  else if (s === 'soon') out.signal = AbortSignal.timeout(5);
  else if (s === 'never') {
    const controller = new AbortController();
    world.controllers.push(controller);
    out.signal = controller.signal;
  } else if (s !== undefined) out.signal = s;
  return out;
}

function describeArg(value: unknown): string {
  if (value instanceof Ref) return String(value);
  if (typeof value === 'symbol') return value.toString();
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** How each call ended, over all runs: "getLinger ok", "setLinger ERR_OUT_OF_RANGE", ... */
const outcomes = new Map<string, number>();
function count(label: string, how: string): void {
  const key = `${label.slice(0, label.indexOf('('))} ${how}`;
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
}

function runSync(world: World, label: string, fn: () => unknown, check: (value: unknown) => string | null): void {
  let value: unknown;
  try {
    value = fn();
    count(label, 'ok');
  } catch (error) {
    count(label, String((error as { code?: unknown })?.code));
    const problem = undocumented(error);
    if (problem) world.problems.push(`${label} threw: ${problem}`);
    return;
  }
  const problem = check(value);
  if (problem) world.problems.push(`${label} returned ${problem}`);
}

function runPromise(world: World, label: string, fn: () => unknown): void {
  let promise: unknown;
  try {
    promise = fn();
  } catch (error) {
    world.problems.push(`${label} threw synchronously (${(error as Error)?.message})`);
    return;
  }
  pending(world, label, promise);
}

const lingerShape = (v: unknown) => {
  const o = v as { enabled?: unknown; seconds?: unknown };
  return o && typeof o.enabled === 'boolean' && Number.isInteger(o.seconds) && (o.seconds as number) >= 0 &&
    (o.enabled || o.seconds === 0)
    ? null : `a malformed linger ${JSON.stringify(v)}`;
};
const tcpInfoShape = (v: unknown) => {
  const o = v as { state?: unknown; unsentBytes?: unknown; unackedBytes?: unknown };
  const count = (x: unknown) => x === null || (Number.isInteger(x) && (x as number) >= 0);
  return o && TCP_STATES.has(o.state as string) && count(o.unsentBytes) && count(o.unackedBytes)
    ? null : `a malformed tcp info ${JSON.stringify(v)}`;
};

function execute(world: World, c: Call): void {
  switch (c.fn) {
    case 'setLinger': {
      const args = [resolveArg(world, c.target), c.enabled, c.seconds].slice(0, c.argc);
      const label = `setLinger(${[c.target, c.enabled, c.seconds].slice(0, c.argc).map(describeArg).join(', ')})`;
      runSync(world, label, () => (setLinger as (...a: unknown[]) => unknown)(...args), (v) => {
        if (v !== undefined) return `${describeArg(v)}, not undefined`;
        // What was set is what the kernel (or the pending setting) now reports.
        const expected = c.enabled === true ? { enabled: true, seconds: args.length < 3 || c.seconds === undefined ? 0 : c.seconds } : { enabled: false, seconds: 0 };
        const seen = getLinger(args[0] as net.Socket);
        return seen.enabled === expected.enabled && seen.seconds === expected.seconds
          ? null : `fine, but getLinger() then reports ${JSON.stringify(seen)}`;
      });
      return;
    }
    case 'getLinger':
      runSync(world, `getLinger(${describeArg(c.target)})`, () => getLinger(resolveArg(world, c.target) as net.Socket), lingerShape);
      return;
    case 'getTcpInfo':
      runSync(world, `getTcpInfo(${describeArg(c.target)})`, () => getTcpInfo(resolveArg(world, c.target) as net.Socket), tcpInfoShape);
      return;
    case 'shutdown':
      runSync(world, `shutdown(${describeArg(c.target)}, ${describeArg(c.how)})`,
        () => shutdown(resolveArg(world, c.target) as net.Socket, c.how as 'read'),
        (v) => (v === undefined ? null : `${describeArg(v)}, not undefined`));
      return;
    case 'closeSocket':
      runPromise(world, `closeSocket(${describeArg(c.target)}, ${describeArg(c.options)})`,
        () => closeSocket(resolveArg(world, c.target) as net.Socket, resolveOptions(world, c.options) as object));
      return;
    case 'gracefulShutdown':
      runPromise(world, `gracefulShutdown(${describeArg(c.target)}, ${describeArg(c.options)})`,
        () => gracefulShutdown(resolveArg(world, c.target) as net.Socket, resolveOptions(world, c.options) as object));
      return;
    case 'abortiveClose':
      runPromise(world, `abortiveClose(${describeArg(c.target)})`, () => abortiveClose(resolveArg(world, c.target) as net.Socket));
      return;
    case 'act': {
      const { client, peer } = world.pairs[c.pair];
      switch (c.action) {
        case 'peerWrite': if (peer.writable) peer.write(Buffer.alloc(1024, 0x70)); return;
        case 'peerEnd': if (peer.writable) peer.end(); return;
        case 'peerResume': peer.resume(); return;
        case 'peerDestroy': peer.destroy(); return;
        case 'write': if (client.writable) client.write(Buffer.alloc(1024, 0x77)); return;
        case 'end': if (client.writable) client.end(); return;
        case 'destroy': client.destroy(); return;
        case 'resume': client.resume(); return;
      }
    }
  }
}

function feedBystander(world: World, i: number): void {
  const chunk = Buffer.alloc(512 + (i % 7) * 100, 0x41 + (i % 26));
  world.bystander.written.update(chunk);
  world.bystander.sent += chunk.length;
  world.bystander.client.write(chunk);
}

async function checkBystander(world: World): Promise<string[]> {
  const b = world.bystander;
  const problems: string[] = [];
  const deadline = performance.now() + 3000;
  while (b.got < b.sent && performance.now() < deadline) await delay(5);
  if (b.client.destroyed || b.peer.destroyed) problems.push('bystander destroyed');
  else {
    if (JSON.stringify(getLinger(b.client)) !== JSON.stringify({ enabled: true, seconds: 7 }))
      problems.push(`bystander linger changed: ${JSON.stringify(getLinger(b.client))}`);
    if (JSON.stringify(getLinger(b.peer)) !== JSON.stringify({ enabled: true, seconds: 0 }))
      problems.push(`bystander peer linger changed: ${JSON.stringify(getLinger(b.peer))}`);
    for (const s of [b.client, b.peer]) {
      const { state } = getTcpInfo(s);
      if (state !== 'ESTABLISHED') problems.push(`bystander ${s === b.client ? 'client' : 'peer'} is ${state}`);
    }
  }
  if (b.got !== b.sent) problems.push(`bystander stream: ${b.got} of ${b.sent} bytes arrived`);
  else if (b.written.digest('hex') !== b.received.digest('hex')) problems.push('bystander stream: sha256 differs');
  return problems;
}

async function teardown(world: World): Promise<string[]> {
  world.tornDown = true;
  for (const socket of world.sockets) socket.destroy();
  for (const controller of world.controllers) controller.abort();
  const serversClosed = Promise.all(world.servers.map((s) => new Promise((resolve) => s.close(() => resolve(undefined)))));
  if (await Promise.race([serversClosed.then(() => true), delay(3000).then(() => false)]) === false)
    world.problems.push('a server of the run did not close: a connection of it is still open');
  // Every promise must settle once its socket is gone.
  const deadline = performance.now() + 5000;
  while (world.pending.some((p) => !p.settled) && performance.now() < deadline) await delay(10);
  const problems = world.pending.filter((p) => !p.settled).map((p) => `${p.label} never settled`);
  await Promise.all(world.sockets.map((s) => (s.closed ? undefined : Promise.race([once(s, 'close'), delay(1000)]))));
  return problems;
}

// ---------------------------------------------------------------------------

describe('property: random call sequences', () => {
  it(`${RUNS} runs: documented errors only, every promise settles, the bystander is untouched`, { timeout: 300_000 }, async () => {
    let maxStallMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      maxStallMs = Math.max(maxStallMs, now - last - 5);
      last = now;
    }, 5);
    const stats = { runs: 0, calls: 0, reusedFd: 0, emitted: new Map<string, number>() };
    const started = performance.now();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30, size: 'medium' }), async (steps) => {
          const world = await makeWorld();
          stats.runs++;
          if (world.bystander.reusedFd) stats.reusedFd++;
          const problems: string[] = [];
          try {
            for (let i = 0; i < steps.length; i++) {
              execute(world, steps[i].call);
              stats.calls++;
              feedBystander(world, i);
              await (steps[i].pauseMs === 0 ? new Promise((resolve) => setImmediate(resolve)) : delay(steps[i].pauseMs));
            }
            problems.push(...world.problems.splice(0), ...await checkBystander(world));
          } finally {
            problems.push(...await teardown(world), ...world.problems);
            for (const [code, n] of world.emitted) stats.emitted.set(code, (stats.emitted.get(code) ?? 0) + n);
          }
          if (unhandled.length > 0) problems.push(...unhandled.splice(0).map((e) => `unhandled: ${String((e as Error)?.stack ?? e)}`));
          if (problems.length > 0) throw new Error(problems.join('\n'));
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: process.env.PROPERTY_SHRINK === "0" },
      );
    } finally {
      clearInterval(ticker);
      console.log(
        `property: ${stats.runs} runs (with shrinking), ${stats.calls} calls in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
        `bystander reused a destroyed socket's fd in ${stats.reusedFd} runs; max loop stall ${maxStallMs.toFixed(1)} ms; ` +
        `socket errors emitted: ${JSON.stringify(Object.fromEntries(stats.emitted))}\n` +
        `outcomes: ${[...outcomes].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}`,
      );
    }
    expect(unhandled).toEqual([]);
    expect(maxStallMs).toBeLessThan(500);
  });
});

describe('a net.Socket that was never constructed', () => {
  // Object.create(net.Socket.prototype) passes `instanceof net.Socket`; it
  // must get ERR_INVALID_ARG_TYPE like any other non-socket, not Node's
  // internal TypeError without a code.
  it('every function reports ERR_INVALID_ARG_TYPE (or a documented code)', async () => {
    const fake = () => Object.create(net.Socket.prototype) as net.Socket;
    const problems: string[] = [];
    for (const [name, fn] of Object.entries({
      closeSocket: () => closeSocket(fake()),
      abortiveClose: () => abortiveClose(fake()),
      gracefulShutdown: () => gracefulShutdown(fake(), { timeout: 100 }),
    })) {
      const outcome = await Promise.race([
        fn().then(() => 'resolved', (error: unknown) => undocumented(error)),
        delay(2000).then(() => 'never settled'),
      ]);
      if (outcome !== null) problems.push(`${name}: ${outcome}`);
    }
    expect(problems).toEqual([]);
  });
});
