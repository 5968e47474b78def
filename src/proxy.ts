// `socket-linger proxy`: a TCP proxy with a relay() per connection, passing
// FIN, half-close and RST on faithfully unless a fault says otherwise
// (toxiproxy's reset_peer / limit_data / latency, as command-line options).
import * as net from 'node:net';
import { setLinger } from './linger';
import { relayWithFaults, type RelayFaults, type RelayResult } from './relay';
import { LINGER_MAX_SECONDS } from './validate';

export const PROXY_USAGE = `Usage: socket-linger proxy --listen HOST:PORT --target HOST:PORT [faults] [--json]

A TCP proxy: one relay() per accepted connection, passing bytes both ways with
backpressure, a FIN as a FIN after every byte before it (half-close: the other
direction keeps flowing), and an RST as an RST after every byte before it has
been acknowledged. Prints 'listening on HOST:PORT' (the real port for port 0),
then one line per connection when it ends. IPv6: [::1]:PORT.

  --listen HOST:PORT          where to accept clients (port 0: any free port)
  --target HOST:PORT          where to connect for each client
  --json                      one JSON object per line (NDJSON) instead of text

Faults (they apply to every connection):
  --reset-after N             exactly N bytes from the target reach the client,
                              then both sides are reset (toxiproxy reset_peer
                              after N bytes)
  --reset-upstream-after N    exactly N bytes from the client reach the target,
                              then both sides are reset
  --fin-after N               exactly N bytes from the target reach the client,
                              then the client gets a FIN (as if the target had
                              sent it; the target's later bytes are discarded;
                              toxiproxy limit_data)
  --rst-on-fin                the target's FIN reaches the client as an RST
                              (after every byte before it)
  --linger S                  closes toward clients are closesocket() with
                              SO_LINGER {on, S}: S = 0 turns each FIN toward
                              the client into an RST; S > 0 waits up to S
                              seconds for the client to acknowledge, then RST
                              (no half-close toward the client in this mode)
  --delay-close MS            wait MS before every close toward the client (FIN
                              or RST)
  --latency MS                hold every chunk MS before passing it on (both
                              directions; FINs wait their turn)
  --idle-timeout MS           reset both sides after MS without a byte either way

SIGINT / SIGTERM: stop accepting, reset every open connection (both sides get
an RST; their lines are printed), exit 0. Usage errors exit 2.`;

export interface Endpoint { host: string; port: number }

export interface ProxyOptions {
  listen: Endpoint;
  target: Endpoint;
  json: boolean;
  faults: RelayFaults;
  lingerSeconds: number | null;
  idleTimeout: number | undefined;
}

export class UsageError extends Error {}

export function parseEndpoint(text: string, name: string): Endpoint {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!match) throw new UsageError(`${name} needs HOST:PORT (IPv6: [::1]:PORT), got '${text}'`);
  const host = match[1] ?? match[2];
  const port = Number(match[3]);
  if (port > 65535) throw new UsageError(`${name}: port ${port} is out of range (0-65535)`);
  if (match[1] !== undefined && net.isIPv6(host) === false) throw new UsageError(`${name}: '${host}' is not an IPv6 address`);
  return { host, port };
}

function formatEndpoint(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

export function parseProxyArgs(argv: string[]): ProxyOptions | 'help' {
  let listen: Endpoint | undefined;
  let target: Endpoint | undefined;
  const options: ProxyOptions = {
    listen: undefined as never, target: undefined as never, json: false, faults: {}, lingerSeconds: null, idleTimeout: undefined,
  };
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (arg === '--help' || arg === '-h') return 'help';
    if (seen.has(arg)) throw new UsageError(`${arg} given twice`);
    seen.add(arg);
    const text = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    const integer = (max = Number.MAX_SAFE_INTEGER): number => {
      const v = text();
      const n = Number(v);
      if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n > max) throw new UsageError(`${arg} needs an integer from 0 to ${max}, got '${v}'`);
      return n;
    };
    const flag = () => {
      if (inline !== undefined) throw new UsageError(`${arg} takes no value`);
    };
    switch (arg) {
      case '--listen': listen = parseEndpoint(text(), arg); break;
      case '--target': target = parseEndpoint(text(), arg); break;
      case '--json': flag(); options.json = true; break;
      case '--reset-after': options.faults.bToAAfter = { bytes: integer(), then: 'RST' }; break;
      case '--fin-after': options.faults.bToAAfter = { bytes: integer(), then: 'FIN' }; break;
      case '--reset-upstream-after': options.faults.aToBAfter = { bytes: integer(), then: 'RST' }; break;
      case '--rst-on-fin': flag(); options.faults.rstOnFinFromB = true; break;
      case '--linger': options.lingerSeconds = integer(LINGER_MAX_SECONDS); options.faults.lingerCloseA = true; break;
      case '--delay-close': options.faults.delayCloseA = integer(2 ** 31 - 1); break;
      case '--latency': options.faults.latencyMs = integer(2 ** 31 - 1); break;
      case '--idle-timeout': options.idleTimeout = integer(2 ** 31 - 1); break;
      default: throw new UsageError(arg.startsWith('-') ? `Unknown option: ${arg}` : `Unexpected argument: ${arg}`);
    }
  }
  if (seen.has('--reset-after') && seen.has('--fin-after')) throw new UsageError('--reset-after and --fin-after exclude each other');
  if (!listen) throw new UsageError('--listen HOST:PORT is required');
  if (!target) throw new UsageError('--target HOST:PORT is required');
  if (target.port === 0) throw new UsageError('--target needs a port other than 0');
  options.listen = listen;
  options.target = target;
  return options;
}

const SIDE = { a: 'client', b: 'target' } as const;

export interface ConnectionReport {
  client: string;
  clientToTarget: { bytes: number; ending: 'FIN' | 'RST' };
  targetToClient: { bytes: number; ending: 'FIN' | 'RST' };
  reason: RelayResult['reason'];
  by: 'client' | 'target' | null;
  error: string | null;
  durationMs: number;
}

function report(client: string, result: RelayResult): ConnectionReport {
  const error = result.error as NodeJS.ErrnoException | null;
  return {
    client,
    clientToTarget: result.aToB,
    targetToClient: result.bToA,
    reason: result.reason,
    by: result.by === null ? null : SIDE[result.by],
    error: error ? error.code ?? error.message : null,
    durationMs: result.elapsedMs,
  };
}

function text(r: ConnectionReport): string {
  const why = r.reason === 'closed' ? 'closed' : r.by ? `${r.reason} by ${r.by}${r.error ? ` (${r.error})` : ''}` : r.reason;
  return `${r.client}  client->target ${r.clientToTarget.bytes} B ${r.clientToTarget.ending}  ` +
    `target->client ${r.targetToClient.bytes} B ${r.targetToClient.ending}  ${why}  ${r.durationMs} ms`;
}

/** Runs the proxy until SIGINT / SIGTERM; resolves once it has stopped. */
export async function runProxy(options: ProxyOptions, out: (line: string) => void): Promise<void> {
  const controller = new AbortController();
  const open = new Set<Promise<void>>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const address = formatEndpoint(client.remoteAddress ?? '?', client.remotePort ?? 0);
    if (options.lingerSeconds !== null) setLinger(client, true, options.lingerSeconds);
    const upstream = net.connect({ host: options.target.host, port: options.target.port, allowHalfOpen: true });
    const done = relayWithFaults(client, upstream, { idleTimeout: options.idleTimeout, signal: controller.signal }, options.faults)
      .then((result) => {
        const r = report(address, result);
        out(options.json ? JSON.stringify(r) : text(r));
      }, (error) => out(`${address}  relay failed: ${error?.message ?? error}`))
      .finally(() => open.delete(done));
    open.add(done);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  out(options.json
    ? JSON.stringify({ listening: formatEndpoint(address.address, address.port), target: formatEndpoint(options.target.host, options.target.port) })
    : `listening on ${formatEndpoint(address.address, address.port)}`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close();
      controller.abort();
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await Promise.all([...open]);
}

/** The `proxy` command: argv after the word `proxy`. */
export async function proxyCommand(argv: string[]): Promise<void> {
  let options: ProxyOptions | 'help';
  try {
    options = parseProxyArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`socket-linger proxy: ${error.message}\n\n${PROXY_USAGE}\n`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(`${PROXY_USAGE}\n`);
    return;
  }
  try {
    await runProxy(options, (line) => process.stdout.write(`${line}\n`));
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    process.stderr.write(`socket-linger proxy: cannot listen on ${formatEndpoint(options.listen.host, options.listen.port)}: ${e.code ?? e.message}\n`);
    process.exit(1);
  }
  process.exitCode = 0;
}
