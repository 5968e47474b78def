// Real loopback connections and ways to watch what the peer observes.
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { getTcpInfo, type TcpState } from '../dist/index.js';
import { stallMonitor } from '../dist/stall.js';

export const fixtures = {
  key: readFileSync(join(__dirname, 'fixtures', 'key.pem')),
  cert: readFileSync(join(__dirname, 'fixtures', 'cert.pem')),
};

export interface Pair {
  client: net.Socket;
  /** The accepted end. */
  peer: net.Socket;
  server: net.Server;
  close(): Promise<void>;
}

/** A connected loopback pair; `peer` is half-open so it never answers a FIN by itself. */
export async function connectPair(
  options: { host?: string; serverSetup?: (server: net.Server) => void } = {},
): Promise<Pair> {
  const host = options.host ?? '127.0.0.1';
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  options.serverSetup?.(server);
  server.listen(0, host);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect((server.address() as net.AddressInfo).port, host);
  await once(client, 'connect');
  const [peer] = (await accepted) as [net.Socket];
  return closable(client, peer, server);
}

/** A pair with a close() that ends both sockets and the server. */
function closable<S extends net.Socket>(client: S, peer: S, server: net.Server) {
  return {
    client, peer, server,
    async close() {
      client.destroy();
      peer.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What a peer saw of the connection's end. */
export interface PeerView {
  bytes: number;
  /** 'end' fired (not proof of a FIN after a partial read: see SPEC). */
  ended: boolean;
  /** Error code seen ('ECONNRESET' for an RST), or null. */
  error: string | null;
  /** Kernel state at the moment the stream ended or errored. */
  stateAtEnd: TcpState | null;
  /**
   * How the connection ended, judged by the kernel: a FIN leaves the peer in
   * CLOSE_WAIT, an RST in CLOSED (Node may report a reset as 'end').
   */
  outcome: 'FIN' | 'RST' | 'open';
}

/** Reads everything until end/error; resolves with what the peer observed. */
export function watchPeer(peer: net.Socket, options: { startPaused?: boolean } = {}) {
  const view: PeerView = { bytes: 0, ended: false, error: null, stateAtEnd: null, outcome: 'open' };
  const done = new Promise<PeerView>((resolve) => {
    const snapshotState = () => {
      try {
        view.stateAtEnd = getTcpInfo(peer).state;
      } catch {
        view.stateAtEnd = null;
      }
      if (view.error === 'ECONNRESET' || view.stateAtEnd === 'CLOSED') view.outcome = 'RST';
      else if (view.ended && view.stateAtEnd === 'CLOSE_WAIT') view.outcome = 'FIN';
    };
    peer.on('data', (chunk: Buffer) => { view.bytes += chunk.length; });
    peer.on('end', () => { view.ended = true; snapshotState(); resolve(view); });
    peer.on('error', (error: NodeJS.ErrnoException) => {
      view.error = error.code ?? String(error);
      snapshotState();
      resolve(view);
    });
    peer.on('close', () => resolve(view));
  });
  if (options.startPaused) peer.pause();
  else peer.resume();
  return { view, done };
}

/**
 * Writes `chunk`-sized blocks, each fully handed to the kernel, until at
 * least `minQueued` bytes sit unsent or unacknowledged in the kernel's send
 * queue (the peer must not be reading). Returns the bytes written.
 */
export async function fillKernelSendQueue(socket: net.Socket, minQueued = 256 * 1024, chunk = 64 * 1024) {
  const block = Buffer.alloc(chunk, 0x61);
  let written = 0;
  for (let i = 0; i < 4096; i++) {
    const flushed = await Promise.race([
      new Promise<boolean>((resolve) => socket.write(block, () => resolve(true))),
      delay(500).then(() => false),
    ]);
    if (!flushed) throw new Error('kernel buffers filled before the send queue reached the target');
    written += chunk;
    const info = getTcpInfo(socket);
    // macOS cannot split a non-empty send queue (null): count what was written.
    const queued = info.unsentBytes === null ? written : info.unsentBytes + (info.unackedBytes ?? 0);
    if (queued >= minQueued) return written;
  }
  throw new Error('send queue never filled');
}

export function delay(ms: number) {
  return new Promise<void>((resolve) => setTimeout(resolve, ms));
}

/** Waits until `check()` holds; throws after `timeoutMs`, saying what was awaited (`what()`, read then). */
export async function until(check: () => boolean, timeoutMs = 10_000, what: () => string = () => 'condition') {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what()} not met within ${timeoutMs} ms`);
    await delay(5);
  }
}

/** Longest gap between timer ticks while `work` runs: how long the loop stalled. */
export async function measureStall<T>(work: () => Promise<T>): Promise<{ result: T; maxStallMs: number }> {
  const stall = stallMonitor(2);
  try {
    const result = await work();
    await delay(20);
    return { result, maxStallMs: stall.stop() };
  } finally {
    stall.stop(); // again after a throw: clears the timer
  }
}

export async function tlsPair() {
  const server = tls.createServer({ ...fixtures, allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection');
  const client = tls.connect({
    port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false,
  });
  await once(client, 'secureConnect');
  const [peer] = (await accepted) as [tls.TLSSocket];
  return closable(client, peer, server);
}

export async function expectError(promiseOrFn: (() => unknown) | Promise<unknown>, code: string) {
  try {
    if (typeof promiseOrFn === 'function') await promiseOrFn();
    else await promiseOrFn;
  } catch (error) {
    if ((error as { code?: string }).code !== code)
      throw new Error(`expected ${code}, got ${(error as { code?: string }).code}: ${(error as Error).message}`);
    return error as NodeJS.ErrnoException;
  }
  throw new Error(`expected ${code}, but nothing was thrown`);
}

/** Waits (loosely bounded) until the kernel reports `state` for a socket. */
export async function waitForState(socket: net.Socket, state: TcpState, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  let seen = getTcpInfo(socket).state;
  while (seen !== state) {
    if (Date.now() > deadline) throw new Error(`socket stayed ${seen}, expected ${state}`);
    await delay(5);
    seen = getTcpInfo(socket).state;
  }
}

// ---------------------------------------------------------------------------
// A python3 peer: a non-Node process that tells FIN (recv() == b'') from RST
// (ConnectionResetError) and reports send errors (EPIPE/ECONNRESET) exactly.

/** What the python peer saw; `state` is its kernel TCP state when it reported. */
export interface PyView {
  bytes: number;
  /** recv() returned b'': the other side's FIN. */
  fin: boolean;
  /** recv() or send() failed with ECONNRESET (an RST reached this peer). */
  rst: boolean;
  /** The first send() error code (EPIPE, ECONNRESET), or null. */
  sendError: string | null;
  sent: number;
  state: string | null;
  /** Milliseconds since the peer connected when fin / rst was first seen. */
  finAtMs: number | null;
  rstAtMs: number | null;
}

export interface PyPeerOptions {
  /** Connect to this port on 127.0.0.1 ... */
  connect?: number;
  /** ... or listen on 127.0.0.1 and accept one connection. */
  listen?: boolean;
  /** Do not read until the 'read' command ('readsome N': read N bytes now, then report 'readsome'). */
  paused?: boolean;
  /** SO_RCVBUF, set before connecting (small: the sender's data stays queued). */
  rcvbuf?: number;
  /** Bytes to send right after connecting, then shutdown(SHUT_WR) if shutWr. */
  send?: number;
  shutWr?: boolean;
  /** Keep sending 16 KiB blocks until a send fails. */
  sendForever?: boolean;
  /** Stay after the FIN (for late sends); otherwise the peer reports and exits on FIN or RST. */
  stayAfterFin?: boolean;
  /** Gives up (reports and exits) after this long. */
  timeoutMs?: number;
}

const PY_PEER = String.raw`
import errno, json, os, select, socket, struct, sys, time
cfg = json.loads(sys.argv[1])
STATES = {1:'ESTABLISHED',2:'SYN_SENT',3:'SYN_RECEIVED',4:'FIN_WAIT_1',5:'FIN_WAIT_2',6:'TIME_WAIT',7:'CLOSED',8:'CLOSE_WAIT',9:'LAST_ACK',10:'LISTEN',11:'CLOSING'}
st = dict(bytes=0, fin=False, rst=False, sendError=None, sent=0, state=None, finAtMs=None, rstAtMs=None)
def emit(**k):
    sys.stdout.write(json.dumps(k) + "\n"); sys.stdout.flush()
def tcp_state():
    try: return STATES.get(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0], '?')
    except OSError: return None
def report(event):
    st['state'] = tcp_state(); emit(event=event, **st)
def ms(): return round((time.monotonic() - t0) * 1000)
def mark_rst():
    if not st['rst']: st['rst'] = True; st['rstAtMs'] = ms(); emit(event='rst', at=ms())
def send_some(n, block):
    global closed_w
    while n > 0:
        try:
            k = s.send(b'p' * min(n, block)); st['sent'] += k; n -= k
        except BlockingIOError:
            select.select([], [s], [], 0.05)
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            if st['sendError'] is None: st['sendError'] = name; emit(event='sendError', code=name, at=ms())
            if e.errno in (errno.ECONNRESET, errno.EPIPE): mark_rst()
            return False
    return True
if cfg.get('listen'):
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if cfg.get('rcvbuf'): ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg['rcvbuf'])
    ls.bind(('127.0.0.1', 0)); ls.listen(1); emit(event='listening', port=ls.getsockname()[1])
    s, _ = ls.accept(); ls.close()
else:
    s = socket.socket()
    if cfg.get('rcvbuf'): s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg['rcvbuf'])
    s.connect(('127.0.0.1', cfg['connect']))
t0 = time.monotonic()
s.setblocking(False)
emit(event='connected', port=s.getsockname()[1])
if cfg.get('send'): send_some(cfg['send'], 65536); emit(event='sent', n=st['sent'])
if cfg.get('shutWr'): s.shutdown(socket.SHUT_WR); emit(event='shutwr')
reading = not cfg.get('paused'); read_done = False
deadline = time.monotonic() + cfg.get('timeoutMs', 8000) / 1000.0
stdin = sys.stdin.buffer; pending = b''
while time.monotonic() < deadline:
    if st['rst'] or (st['fin'] and not cfg.get('stayAfterFin') and not cfg.get('sendForever')): break
    rl = [stdin]
    if reading and not read_done: rl.append(s)
    wl = [s] if cfg.get('sendForever') and st['sendError'] is None else []
    r, w, _ = select.select(rl, wl, [], 0.05)
    if s in r:
        try:
            d = s.recv(262144)
            if d: st['bytes'] += len(d)
            else:
                read_done = True; st['fin'] = True; st['finAtMs'] = ms(); emit(event='fin', bytes=st['bytes'], at=ms())
        except BlockingIOError: pass
        except ConnectionResetError: read_done = True; mark_rst()
    if w: send_some(16384, 16384)
    if stdin in r:
        chunk = os.read(stdin.fileno(), 4096)
        if not chunk: break
        pending += chunk
        quit = False
        while b'\n' in pending:
            line, pending = pending.split(b'\n', 1)
            cmd = line.decode().split()
            if not cmd: continue
            if cmd[0] == 'read': reading = True
            elif cmd[0] == 'readsome':
                want = int(cmd[1]); got = 0
                while got < want:
                    select.select([s], [], [], 0.05)
                    try: d = s.recv(min(want - got, 262144))
                    except BlockingIOError: continue
                    if not d: break
                    got += len(d)
                st['bytes'] += got; emit(event='readsome', n=got)
            elif cmd[0] == 'send': send_some(int(cmd[1]), 65536); emit(event='sent', n=st['sent'])
            elif cmd[0] == 'shutwr': s.shutdown(socket.SHUT_WR); emit(event='shutwr')
            elif cmd[0] == 'report': report('report')
            elif cmd[0] == 'reset':
                report('done'); s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); s.close(); sys.exit(0)
            elif cmd[0] == 'quit': quit = True
        if quit: break
report('done')
`;

export interface PyPeer {
  /** Resolves with the first event of that name (rejects after timeoutMs). */
  next(event: string, timeoutMs?: number): Promise<Record<string, unknown> & PyView>;
  command(line: string): void;
  /** The final report (the process exits after it). */
  done: Promise<PyView>;
  events: Record<string, unknown>[];
  kill(): void;
}

/**
 * The environment of peers that are not Node (python3, curl): without the
 * sanitizer runtime that scripts/test-asan.sh preloads for the addon, which
 * those programs were not built for (curl hangs under it).
 */
const PEER_ENV: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !/^(LD_PRELOAD|ASAN_OPTIONS|UBSAN_OPTIONS)$/.test(name)),
);

interface JsonWaiter { event: string; resolve: (value: Record<string, unknown>) => void }

/** Parses a child's stdout as JSON lines into `events`, resolving the waiters of each event's name. */
function onJsonLines(stdout: NodeJS.ReadableStream, events: Record<string, unknown>[], waiters: JsonWaiter[]): void {
  let buffered = '';
  stdout.setEncoding('utf8');
  stdout.on('data', (text: string) => {
    buffered += text;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const event = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
      buffered = buffered.slice(nl + 1);
      events.push(event);
      for (const waiter of waiters.filter((w) => w.event === event.event)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(event);
      }
    }
  });
}

export function pythonPeer(options: PyPeerOptions): PyPeer {
  const child = spawn('python3', ['-c', PY_PEER, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'], env: PEER_ENV });
  const events: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: (value: never) => void }[] = [];
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  onJsonLines(child.stdout!, events, waiters as JsonWaiter[]);
  child.stdin!.on('error', () => {}); // the peer may exit first
  const next: PyPeer['next'] = (event, timeoutMs = 5000) => {
    const seen = events.find((e) => e.event === event);
    if (seen) return Promise.resolve(seen as never);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`python peer: no '${event}' within ${timeoutMs} ms (saw ${events.map((e) => e.event).join(',')})`)), timeoutMs);
      waiters.push({ event, resolve: (value) => { clearTimeout(timer); resolve(value); } });
      exit.then(() => setTimeout(() => {
        clearTimeout(timer);
        if (!events.some((e) => e.event === event)) reject(new Error(`python peer exited without '${event}' (saw ${events.map((e) => e.event).join(',')})`));
      }, 50));
    });
  };
  return {
    next,
    command(line) { if (!exited) child.stdin!.write(`${line}\n`); },
    done: next('done', (options.timeoutMs ?? 8000) + 3000) as Promise<PyView>,
    events,
    kill() { if (!exited) child.kill('SIGKILL'); },
  };
}

/** A Node server socket (accepted, paused, half-open allowed) whose client is a python peer. */
export async function acceptPython(options: Omit<PyPeerOptions, 'connect' | 'listen'> = {}) {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const py = pythonPeer({ ...options, connect: (server.address() as net.AddressInfo).port });
  const [socket] = (await accepted) as [net.Socket];
  await py.next('connected');
  return {
    socket, py, server,
    async close() {
      py.kill();
      socket.destroy();
      server.close();
      py.done.catch(() => {});
    },
  };
}

// ---------------------------------------------------------------------------
// Clients that are not Node, for the HTTP tests.

/** A child process whose stdout is JSON lines; `next(event)` waits for one. */
export function jsonLinesChild(command: string, args: string[]) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], env: command === process.execPath ? process.env : PEER_ENV });
  const events: Record<string, unknown>[] = [];
  const waiters: { event: string; resolve: (value: Record<string, unknown>) => void }[] = [];
  onJsonLines(child.stdout!, events, waiters);
  child.stdin!.on('error', () => {});
  return {
    events,
    next(event: string, timeoutMs = 8000): Promise<Record<string, unknown>> {
      const seen = events.find((e) => e.event === event);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${command}: no '${event}' within ${timeoutMs} ms (saw ${events.map((e) => e.event).join(',')})`)), timeoutMs);
        waiters.push({ event, resolve: (value) => { clearTimeout(timer); resolve(value); } });
      });
    },
    command(line: string) { child.stdin!.write(`${line}\n`); },
    kill() { child.kill('SIGKILL'); },
  };
}

/** curl, run to its end: exit code, body, stderr. */
export async function curl(args: string[], timeoutMs = 10_000): Promise<{ code: number | null; body: string; stderr: string }> {
  const out = await runProcess('curl', ['-sS', '--max-time', String(timeoutMs / 1000), ...args], timeoutMs + 5000);
  return { code: out.code, body: out.stdout, stderr: out.stderr };
}

// Processes that are not Node, for the HTTP tests: their own output is the verdict.

export interface ProcessOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end (killed after timeoutMs) and collects its output. */
export function runProcess(command: string, args: string[], timeoutMs = 30_000): Promise<ProcessOutput> {
  return new Promise((resolve, reject) => {
    // A Node child loads the addon: it keeps the environment (under ASan, the preloaded runtime).
    const env = command === process.execPath ? process.env : PEER_ENV;
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => { stdout += text; });
    child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * CommonJS for a child's or worker's steps (Linux): `link(fd)`, what a
 * descriptor names (null if none); `dups()`, how many sockets have two
 * descriptors, i.e. a reference the guard holds (the same socket:[inode]
 * twice in /proc/self/fd: the kernel's own bookkeeping).
 */
export const PROC_FD_HELPERS = String.raw`
  const link = (fd) => { try { return require('node:fs').readlinkSync('/proc/self/fd/' + fd); } catch { return null; } };
  const dups = () => {
    const links = require('node:fs').readdirSync('/proc/self/fd').map(link).filter((l) => l && l.startsWith('socket:'));
    return links.length - new Set(links).size;
  };
`;

/**
 * Python for a TLS client (`ending(s)`, s an ssl socket): how its connection
 * ended, from its kernel. Python's ssl reads an RST as b'' too
 * (suppress_ragged_eofs), and its b'' after a close_notify can come before
 * the FIN, so the TCP stream is read on to its end: b'' and CLOSE_WAIT is the
 * server's FIN (the client must not have sent its own), ECONNRESET or CLOSE
 * its RST. Needs `socket` imported.
 */
export const PY_TLS_TCP_ENDING = String.raw`
import os
def ending(s):
    tcp = socket.socket(fileno=os.dup(s.fileno())); tcp.settimeout(5)
    try:
        while tcp.recv(65536): pass
    except ConnectionResetError: return 'rst'
    except socket.timeout: return 'no end'
    state = tcp.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    return {8: 'fin', 7: 'rst'}.get(state, 'tcp state %d' % state)
`;

/**
 * Runs `steps` (CommonJS that calls `report(value)` once) in a Node child's
 * main thread, then the same steps in a worker thread of that child, for the
 * package's per-thread behaviour. Both reports, and the child's stderr.
 */
export async function mainThenWorker<T>(steps: string, timeoutMs = 20_000): Promise<{ main: T; worker: T; stderr: string }> {
  const code = String.raw`
    const { Worker } = require('node:worker_threads');
    const report = (main) => {
      const worker = new Worker("const report = (r) => require('node:worker_threads').parentPort.postMessage(r);" + ${JSON.stringify(steps)}, { eval: true });
      worker.on('message', (inWorker) => console.log(JSON.stringify({ main, worker: inWorker })));
    };` + steps;
  const run = await runProcess(process.execPath, ['-e', code], timeoutMs);
  const last = run.stdout.trim().split('\n').pop();
  if (!last) throw new Error(`no report (exit ${run.code}): ${run.stderr}`);
  return { ...(JSON.parse(last) as { main: T; worker: T }), stderr: run.stderr };
}

/** A python3 script's last stdout line, parsed as JSON (scripts print one JSON report). */
export async function runPythonJson<T = Record<string, unknown>>(
  script: string, args: unknown[] = [], timeoutMs = 30_000,
): Promise<T> {
  const out = await runProcess('python3', ['-c', script, ...args.map(String)], timeoutMs);
  const lines = out.stdout.trim().split('\n');
  try {
    return JSON.parse(lines[lines.length - 1]) as T;
  } catch {
    throw new Error(`python3 said no JSON (exit ${out.code}): ${out.stdout} ${out.stderr}`);
  }
}

// ------------------------------------------------------------- relay / proxy ends

/**
 * A python3 raw-socket end for relay and proxy tests, byte-exact: what it
 * sends is the pattern byte i = i % 251 (i counted from its first byte), and
 * what it receives is checked against the same pattern (`ok`). Judged by the
 * kernel: recv() == b'' is a FIN, ConnectionResetError an RST.
 * Commands (stdin lines): `send N`, `shutwr`, `reset` (linger {1,0} close),
 * `pause`, `resume`, `slow BYTES MS` (read at most BYTES per MS), `report`, `quit`.
 * Events: listening {port}, connected, sent {sent}, fin / rst / done {bytes, ok, ...}.
 */
const PY_END = String.raw`
import errno, json, os, select, socket, struct, sys, time
cfg = json.loads(sys.argv[1])
PAT = bytes(i % 251 for i in range(251)) * 1100
st = dict(bytes=0, ok=True, fin=False, rst=False, sent=0, sendError=None)
def emit(**k):
    sys.stdout.write(json.dumps(k) + "\n"); sys.stdout.flush()
fam = socket.AF_INET6 if ':' in cfg['host'] else socket.AF_INET
if cfg.get('listen'):
    ls = socket.socket(fam); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((cfg['host'], 0)); ls.listen(1); emit(event='listening', port=ls.getsockname()[1])
    s, _ = ls.accept(); ls.close()
else:
    s = socket.socket(fam)
    if cfg.get('rcvbuf'): s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg['rcvbuf'])
    s.connect((cfg['host'], cfg['port']))
s.setblocking(False)
emit(event='connected', port=s.getsockname()[1])
reading = True; read_done = False; slow = None; budget_at = 0.0
to_send = 0; shut_after = False
deadline = time.monotonic() + cfg.get('timeoutMs', 20000) / 1000.0
stdin = sys.stdin.buffer; pending = b''
def fail_send(e):
    name = errno.errorcode.get(e.errno, str(e.errno))
    if st['sendError'] is None: st['sendError'] = name
    if e.errno in (errno.ECONNRESET, errno.EPIPE) and not st['rst']: st['rst'] = True; emit(event='rst', **st)
while time.monotonic() < deadline:
    rl = [stdin]
    now = time.monotonic()
    if reading and not read_done and (slow is None or now >= budget_at): rl.append(s)
    wl = [s] if to_send > 0 and st['sendError'] is None else []
    r, w, _ = select.select(rl, wl, [], 0.005 if slow else 0.05)
    if s in r:
        try:
            d = s.recv(slow[0] if slow else 262144)
            if d:
                o = st['bytes'] % 251
                if d != PAT[o:o + len(d)]: st['ok'] = False
                st['bytes'] += len(d)
                if slow: budget_at = time.monotonic() + slow[1] / 1000.0
            else:
                read_done = True; st['fin'] = True; emit(event='fin', **st)
        except BlockingIOError: pass
        except ConnectionResetError:
            read_done = True
            if not st['rst']: st['rst'] = True; emit(event='rst', **st)
    if w:
        try:
            o = st['sent'] % 251
            k = s.send(PAT[o:o + min(to_send, 262144)]); st['sent'] += k; to_send -= k
            if to_send == 0:
                emit(event='sent', sent=st['sent'])
                if shut_after: s.shutdown(socket.SHUT_WR); shut_after = False; emit(event='shutwr')
        except BlockingIOError: pass
        except OSError as e: fail_send(e)
    if stdin in r:
        chunk = os.read(stdin.fileno(), 4096)
        if not chunk: break
        pending += chunk; quit = False
        while b'\n' in pending:
            line, pending = pending.split(b'\n', 1)
            cmd = line.decode().split()
            if not cmd: continue
            if cmd[0] == 'send': to_send += int(cmd[1])
            elif cmd[0] == 'shutwr':
                if to_send > 0: shut_after = True
                else: s.shutdown(socket.SHUT_WR); emit(event='shutwr')
            elif cmd[0] == 'pause': reading = False
            elif cmd[0] == 'resume': reading = True
            elif cmd[0] == 'slow': slow = (int(cmd[1]), int(cmd[2]))
            elif cmd[0] == 'report': emit(event='report', **st)
            elif cmd[0] == 'reset':
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); s.close(); emit(event='done', **st); sys.exit(0)
            elif cmd[0] == 'quit': quit = True
        if quit: break
emit(event='done', **st)
`;

export interface PyEndView { bytes: number; ok: boolean; fin: boolean; rst: boolean; sent: number; sendError: string | null }

export interface PyEnd {
  next(event: string, timeoutMs?: number): Promise<Record<string, unknown> & PyEndView>;
  command(line: string): void;
  done: Promise<PyEndView>;
  kill(): void;
}

export function pyEnd(options: { host?: string; port?: number; listen?: boolean; rcvbuf?: number; timeoutMs?: number }): PyEnd {
  const child = spawn('python3', ['-c', PY_END, JSON.stringify({ host: '127.0.0.1', ...options })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const events: Record<string, unknown>[] = [];
  const waiters: JsonWaiter[] = [];
  onJsonLines(child.stdout!, events, waiters);
  const next = (event: string, timeoutMs = 15_000) => new Promise<Record<string, unknown>>((resolve, reject) => {
    const seen = events.find((e) => e.event === event);
    if (seen) return resolve(seen);
    const timer = setTimeout(() => reject(new Error(`python end: no '${event}' in ${timeoutMs} ms; saw ${JSON.stringify(events)}`)), timeoutMs);
    waiters.push({ event, resolve: (value) => { clearTimeout(timer); resolve(value); } });
  }) as Promise<Record<string, unknown> & PyEndView>;
  // A test that kills the end without awaiting 'done' must not leave an
  // unhandled rejection behind for a later test (slow runs: ASan).
  const done = next('done', options.timeoutMs ?? 30_000);
  done.catch(() => {});
  return {
    next,
    command: (line) => { if (child.stdin!.writable) child.stdin!.write(`${line}\n`); },
    done,
    kill: () => { if (child.exitCode === null) child.kill('SIGKILL'); },
  };
}
