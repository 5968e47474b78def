// A real network for the fault tests: a network namespace for the peer,
// joined to this (root) namespace by a veth pair, nftables rules inside the
// peer's namespace for the faults, and the peer itself (peer.py) running as a
// separate process in there. Needs root, iproute2 and nftables (setup.ts
// installs the last two when missing).
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import * as readline from 'node:readline';

/** Namespaces and links are named after the creating process: slf-<pid>-<n>. */
export const NS_PREFIX = 'slf-';

export function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function ipNetns(ns: string, cmd: string, args: string[], input?: string): string {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

export type Fault =
  /** The peer vanishes: every packet to and from it is dropped. */
  | 'vanish'
  /** 10 % of the packets in each direction are dropped at random. */
  | 'loss'
  /**
   * The peer stops acknowledging: its pure ACKs (flags exactly ACK, no
   * payload: an IPv4 packet of at most 80 bytes, i.e. 20 IP + 20 TCP + at
   * most 40 option bytes) are dropped on the way out. Its data, FIN and RST
   * still leave; what it receives is untouched.
   */
  | 'noack';

const RULES: Record<Fault, { input: string[]; output: string[] }> = {
  vanish: { input: ['meta l4proto tcp counter drop'], output: ['meta l4proto tcp counter drop'] },
  loss: {
    input: ['meta l4proto tcp numgen random mod 100 < 10 counter drop'],
    output: ['meta l4proto tcp numgen random mod 100 < 10 counter drop'],
  },
  noack: { input: [], output: ['tcp flags == ack ip length <= 80 counter drop'] },
};

let counter = 0;

export interface TestNet {
  ns: string;
  /** Our address (root namespace end of the veth pair). */
  localAddress: string;
  /** The peer's address, inside `ns`. */
  peerAddress: string;
  setFault(fault: Fault | null): void;
  /** Packets the current fault's rules have dropped so far. */
  dropped(): number;
  /** Connections of ours to the peer that the kernel still holds (ss). */
  ourConnections(peerPort: number): string[];
  destroy(): void;
}

function usedAddresses(): Set<string> {
  const used = new Set<string>();
  for (const m of run('ip', ['-4', '-o', 'addr', 'show']).matchAll(/inet (\d+\.\d+\.\d+)\.\d+\//g)) used.add(m[1]);
  return used;
}

/**
 * A /30 from 198.18.0.0/15 (RFC 2544's benchmarking range: never routed,
 * reached here only over our own veth pair), unused on this machine.
 */
function pickSubnet(): [string, string] {
  const used = usedAddresses();
  for (let i = 0; i < 100; i++) {
    const prefix = `198.${18 + (Math.random() < 0.5 ? 0 : 1)}.${Math.floor(Math.random() * 256)}`;
    if (used.has(prefix)) continue;
    const base = 4 * Math.floor(Math.random() * 63);
    return [`${prefix}.${base + 1}`, `${prefix}.${base + 2}`];
  }
  throw new Error('no free 198.18.0.0/15 subnet');
}

export function createTestNet(): TestNet {
  const id = `${process.pid}-${counter++}`;
  const ns = `${NS_PREFIX}${id}`;
  // Interface names: at most 15 characters.
  const short = `${(process.pid % 100000).toString(36)}${counter}`;
  const hostIf = `slfa${short}`;
  const peerIf = `slfb${short}`;
  const [localAddress, peerAddress] = pickSubnet();
  const destroy = () => {
    try { run('ip', ['netns', 'pids', ns]).split(/\s+/).filter(Boolean).forEach((pid) => { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }); } catch { /* no ns */ }
    try { run('ip', ['netns', 'del', ns]); } catch { /* already gone */ }
    try { run('ip', ['link', 'del', hostIf]); } catch { /* went with the namespace */ }
  };
  try {
    run('ip', ['netns', 'add', ns]);
    run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', peerIf, 'netns', ns]);
    run('ip', ['addr', 'add', `${localAddress}/30`, 'dev', hostIf]);
    // No segmentation offload: every packet nftables sees (and drops) is one
    // wire-sized segment, not a 64 KiB super-packet.
    run('ip', ['link', 'set', hostIf, 'gso_max_size', '1500', 'gso_max_segs', '1', 'up']);
    ipNetns(ns, 'ip', ['addr', 'add', `${peerAddress}/30`, 'dev', peerIf]);
    ipNetns(ns, 'ip', ['link', 'set', peerIf, 'gso_max_size', '1500', 'gso_max_segs', '1', 'up']);
    ipNetns(ns, 'ip', ['link', 'set', 'lo', 'up']);
    ipNetns(ns, 'nft', ['-f', '-'], [
      'table inet fault {',
      '  chain input { type filter hook input priority 0; policy accept; }',
      '  chain output { type filter hook output priority 0; policy accept; }',
      '}',
    ].join('\n'));
    waitReachable(ns, localAddress);
  } catch (error) {
    destroy();
    throw error;
  }
  const cleanupOnExit = () => destroy();
  process.once('exit', cleanupOnExit);
  return {
    ns, localAddress, peerAddress,
    setFault(fault) {
      const lines = ['flush chain inet fault input', 'flush chain inet fault output'];
      if (fault) {
        for (const rule of RULES[fault].input) lines.push(`add rule inet fault input ${rule}`);
        for (const rule of RULES[fault].output) lines.push(`add rule inet fault output ${rule}`);
      }
      ipNetns(ns, 'nft', ['-f', '-'], lines.join('\n') + '\n');
    },
    dropped() {
      const listing = ipNetns(ns, 'nft', ['list', 'table', 'inet', 'fault']);
      let packets = 0;
      for (const m of listing.matchAll(/counter packets (\d+)/g)) packets += Number(m[1]);
      return packets;
    },
    ourConnections(peerPort) {
      return run('ss', ['-Htan', 'state', 'all', 'dst', `${peerAddress}:${peerPort}`])
        .split('\n').filter((l) => l.trim() !== '');
    },
    destroy() {
      process.off('exit', cleanupOnExit);
      destroy();
    },
  };
}

/** The link is up when the peer's namespace can ping us (if ping is there). */
function waitReachable(ns: string, address: string) {
  try { run('sh', ['-c', 'command -v ping']); } catch { return; }
  for (let i = 0; i < 50; i++) {
    try {
      ipNetns(ns, 'ping', ['-c', '1', '-W', '1', address]);
      return;
    } catch {
      execFileSync('sleep', ['0.1']);
    }
  }
  // ping may be missing: the first connection will tell.
}

/** Removes namespaces (and their peers) left by test processes that died. */
export function removeStaleNamespaces(): string[] {
  const removed: string[] = [];
  let list = '';
  try { list = run('ip', ['netns', 'list']); } catch { return removed; }
  for (const line of list.split('\n')) {
    const name = line.split(/\s+/)[0];
    const m = /^slf-(\d+)-\d+$/.exec(name ?? '');
    if (!m) continue;
    let alive = true;
    try { process.kill(Number(m[1]), 0); } catch { alive = false; }
    if (alive) continue;
    try { run('ip', ['netns', 'pids', name]).split(/\s+/).filter(Boolean).forEach((pid) => { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } }); } catch { /* ignore */ }
    try { run('ip', ['netns', 'del', name]); removed.push(name); } catch { /* ignore */ }
  }
  return removed;
}

// ---------------------------------------------------------------------------
// The peer process

export interface PeerView {
  event: string;
  bytes: number;
  sha256: string;
  how: 'FIN' | 'RST' | 'open';
  error: string | null;
  eof: boolean;
  state: string | null;
  recvQueue: number | null;
  sent: number;
  sentSha256: string;
  shutWr: boolean;
}

export interface PeerOptions {
  read?: 'all' | 'none' | 'slow';
  slowBytes?: number;
  echo?: boolean;
  send?: number;
  finAfter?: number;
  onEof?: 'fin' | 'none';
  rcvbuf?: number;
}

export interface PeerProcess {
  port: number;
  pid: number;
  child: ChildProcessWithoutNullStreams;
  /** Next event of this name (events seen earlier are kept). */
  next(event: string, timeoutMs?: number): Promise<PeerView>;
  command(cmd: 'read' | 'probe' | 'report' | 'exit'): void;
  /** Everything the peer printed, for failure messages. */
  log: string[];
  stop(): Promise<void>;
}

let python: string | undefined;
function pythonPath(): string {
  // Resolved once: version-manager shims would add their start-up to every peer.
  python ??= run('python3', ['-c', 'import sys; print(sys.executable)']).trim();
  return python;
}

export async function startPeer(net: TestNet, options: PeerOptions = {}): Promise<PeerProcess> {
  const args = [join(__dirname, 'peer.py'), '--host', net.peerAddress, '--read', options.read ?? 'all'];
  if (options.slowBytes) args.push('--slow-bytes', String(options.slowBytes));
  if (options.echo) args.push('--echo');
  if (options.send) args.push('--send', String(options.send));
  if (options.finAfter !== undefined) args.push('--fin-after', String(options.finAfter));
  if (options.onEof) args.push('--on-eof', options.onEof);
  if (options.rcvbuf) args.push('--rcvbuf', String(options.rcvbuf));
  // `ip netns exec` execs the command itself: the child's pid is the peer's.
  const child = spawn('ip', ['netns', 'exec', net.ns, pythonPath(), '-u', ...args], { stdio: 'pipe' });
  const log: string[] = [];
  const seen: PeerView[] = [];
  const waiters: { event: string; resolve: (v: PeerView) => void }[] = [];
  child.stderr.on('data', (d: Buffer) => log.push(`stderr: ${d}`));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    log.push(line);
    let view: PeerView;
    try { view = JSON.parse(line); } catch { return; }
    const i = waiters.findIndex((w) => w.event === view.event);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(view);
    else seen.push(view);
  });
  const exited = once(child, 'exit');
  const next = (event: string, timeoutMs = 10_000) => {
    const i = seen.findIndex((v) => v.event === event);
    if (i >= 0) return Promise.resolve(seen.splice(i, 1)[0]);
    return new Promise<PeerView>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`peer: no '${event}' within ${timeoutMs} ms; it printed:\n${log.join('\n')}`)), timeoutMs);
      waiters.push({ event, resolve: (v) => { clearTimeout(timer); resolve(v); } });
    });
  };
  const listening = (await next('listening')) as unknown as { port: number };
  return {
    port: listening.port,
    pid: child.pid!,
    child,
    next,
    log,
    command(cmd) { if (child.exitCode === null && child.signalCode === null) child.stdin.write(`${cmd}\n`); },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The bytes `peer.py --send N` sends (a sha256 chain seeded with "peer-7"). */
export function peerPayload(n: number, seed = 7): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash('sha256').update(`peer-${seed}`).digest();
  for (let off = 0; off < n; off += 32) {
    block.copy(out, off, 0, Math.min(32, n - off));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
