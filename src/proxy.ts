// `socket-linger proxy`: a TCP proxy with a relay() per connection, passing
// FIN, half-close and RST on faithfully unless a fault says otherwise
// (toxiproxy's reset_peer / limit_data / latency, as command-line options).
import * as net from 'node:net';
import { setLinger } from './linger';
import { relayWithFaults, type RelayFaults, type RelayResult } from './relay';
import { LINGER_MAX_SECONDS } from './validate';
import { integerArg, parseArgs, UsageError } from './cli-args';

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

const PROXY_OPTIONS = {
  '--listen': { value: true }, '--target': { value: true }, '--json': { value: false },
  '--reset-after': { value: true }, '--fin-after': { value: true }, '--reset-upstream-after': { value: true },
  '--rst-on-fin': { value: false }, '--linger': { value: true }, '--delay-close': { value: true },
  '--latency': { value: true }, '--idle-timeout': { value: true },
} as const;

const MAX_MS = 2 ** 31 - 1;

export function parseProxyArgs(argv: string[]): ProxyOptions | 'help' {
  const { options: given, positionals, help } = parseArgs(argv, PROXY_OPTIONS);
  if (help) return 'help';
  if (positionals.length > 0) throw new UsageError(`Unexpected argument: ${positionals[0]}`);
  const text = (name: keyof typeof PROXY_OPTIONS) => given.get(name) as string | undefined;
  const integer = (name: keyof typeof PROXY_OPTIONS, max = Number.MAX_SAFE_INTEGER) => {
    const raw = text(name);
    return raw === undefined ? undefined : integerArg(raw, name, 0, max);
  };
  const options: ProxyOptions = {
    listen: undefined as never, target: undefined as never, json: given.has('--json'), faults: {},
    lingerSeconds: null, idleTimeout: integer('--idle-timeout', MAX_MS),
  };
  if (given.has('--reset-after') && given.has('--fin-after')) throw new UsageError('--reset-after and --fin-after exclude each other');
  const resetAfter = integer('--reset-after');
  const finAfter = integer('--fin-after');
  const resetUpstreamAfter = integer('--reset-upstream-after');
  if (resetAfter !== undefined) options.faults.bToAAfter = { bytes: resetAfter, then: 'RST' };
  if (finAfter !== undefined) options.faults.bToAAfter = { bytes: finAfter, then: 'FIN' };
  if (resetUpstreamAfter !== undefined) options.faults.aToBAfter = { bytes: resetUpstreamAfter, then: 'RST' };
  if (given.has('--rst-on-fin')) options.faults.rstOnFinFromB = true;
  const linger = integer('--linger', LINGER_MAX_SECONDS);
  if (linger !== undefined) {
    options.lingerSeconds = linger;
    options.faults.lingerCloseA = true;
  }
  const delayClose = integer('--delay-close', MAX_MS);
  if (delayClose !== undefined) options.faults.delayCloseA = delayClose;
  const latency = integer('--latency', MAX_MS);
  if (latency !== undefined) options.faults.latencyMs = latency;
  const listen = text('--listen');
  const target = text('--target');
  if (listen === undefined) throw new UsageError('--listen HOST:PORT is required');
  if (target === undefined) throw new UsageError('--target HOST:PORT is required');
  options.listen = parseEndpoint(listen, '--listen');
  options.target = parseEndpoint(target, '--target');
  if (options.target.port === 0) throw new UsageError('--target needs a port other than 0');
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
