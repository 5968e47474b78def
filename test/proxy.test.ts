// `socket-linger proxy` as users run it (a child process), with python3
// raw-socket ends judged by what their recv() returned, byte-exact.
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import * as net from 'node:net';
import { pyEnd, type PyEnd } from './helpers';

const cli = join(__dirname, '..', 'dist', 'cli.js');

interface Proxy { child: ChildProcess; port: number; lines: string[]; next(): Promise<string>; exit: Promise<number | null> }

async function startProxy(targetPort: number, args: string[], host = '127.0.0.1'): Promise<Proxy> {
  const h = host.includes(':') ? `[${host}]` : host;
  const child = spawn(process.execPath, [cli, 'proxy', '--listen', `${h}:0`, '--target', `${h}:${targetPort}`, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let buffered = '';
  let read = 0;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (t: string) => {
    buffered += t;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      lines.push(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
      waiters.splice(0).forEach((w) => w(''));
    }
  });
  const next = async () => {
    while (lines.length <= read) await new Promise<string>((r) => waiters.push(r));
    return lines[read++];
  };
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const first = await next();
  const match = /^listening on (?:\[[^\]]+\]|[^:]+):(\d+)$/.exec(first) ?? /"listening":"(?:\[[^\]]+\]|[^:]+):(\d+)"/.exec(first);
  if (!match) throw new Error(`unexpected first line: ${first}`);
  return { child, port: Number(match[1]), lines, next, exit };
}

async function through(args: string[], host = '127.0.0.1') {
  const target = pyEnd({ listen: true, host });
  const { port } = await target.next('listening');
  const proxy = await startProxy(port as number, args, host);
  const client = pyEnd({ host, port: proxy.port });
  await Promise.all([client.next('connected'), target.next('connected')]);
  const stop = async () => {
    client.kill(); target.kill();
    proxy.child.kill('SIGINT');
    return proxy.exit;
  };
  return { target, client, proxy, stop };
}

const first = (end: PyEnd) => Promise.race([end.next('rst'), end.next('fin')]);

describe('socket-linger proxy', () => {
  it('passes half-close both ways and logs the connection (text)', async () => {
    const { target, client, proxy, stop } = await through([]);
    try {
      client.command('send 10000'); client.command('shutwr');
      expect(await target.next('fin')).toMatchObject({ bytes: 10000, ok: true });
      target.command('send 20000'); target.command('shutwr');
      expect(await client.next('fin')).toMatchObject({ bytes: 20000, ok: true, rst: false });
      expect(await proxy.next()).toMatch(/^127\.0\.0\.1:\d+ {2}client->target 10000 B FIN {2}target->client 20000 B FIN {2}closed {2}[\d.]+ ms$/);
    } finally { expect(await stop()).toBe(0); }
  });

  it("--reset-after N: exactly N bytes reach the client, then both get an RST (--json log)", async () => {
    const { target, client, proxy, stop } = await through(['--reset-after', '100000', '--json']);
    try {
      target.command('send 300000');
      expect(await first(client)).toMatchObject({ event: 'rst', bytes: 100000, ok: true });
      expect(await first(target)).toMatchObject({ event: 'rst' });
      const line = JSON.parse(await proxy.next());
      expect(line).toMatchObject({ targetToClient: { bytes: 100000, ending: 'RST' }, clientToTarget: { bytes: 0, ending: 'RST' }, reason: 'fault', by: null });
      expect(line.client).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(typeof line.durationMs).toBe('number');
    } finally { expect(await stop()).toBe(0); }
  });

  it('--reset-upstream-after N: exactly N bytes reach the target, then both get an RST', async () => {
    const { target, client, stop } = await through(['--reset-upstream-after', '54321']);
    try {
      client.command('send 200000');
      expect(await first(target)).toMatchObject({ event: 'rst', bytes: 54321, ok: true });
      expect(await first(client)).toMatchObject({ event: 'rst' });
    } finally { await stop(); }
  });

  it('--fin-after N: exactly N bytes, then a FIN; the client can still send', async () => {
    const { target, client, stop } = await through(['--fin-after', '7777']);
    try {
      target.command('send 50000');
      expect(await first(client)).toMatchObject({ event: 'fin', bytes: 7777, ok: true });
      client.command('send 3000'); client.command('shutwr');
      expect(await target.next('fin')).toMatchObject({ bytes: 3000, ok: true });
    } finally { await stop(); }
  });

  it("--rst-on-fin: the target's FIN reaches the client as an RST after every byte; without it, a FIN", async () => {
    for (const args of [['--rst-on-fin'], []]) {
      const { target, client, stop } = await through(args);
      try {
        target.command('send 40000'); target.command('shutwr');
        expect(await first(client)).toMatchObject({ event: args.length ? 'rst' : 'fin', bytes: 40000, ok: true });
      } finally { await stop(); }
    }
  });

  it('--linger 0: a close toward the client is an RST; --delay-close holds it back', async () => {
    const { target, client, stop } = await through(['--linger', '0', '--delay-close', '300']);
    try {
      const started = Date.now();
      target.command('send 1000'); target.command('shutwr');
      expect(await first(client)).toMatchObject({ event: 'rst', bytes: 1000, ok: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    } finally { await stop(); }
  });

  it('--linger 2: the client acknowledges, so it gets every byte and a FIN', async () => {
    const { target, client, stop } = await through(['--linger', '2']);
    try {
      target.command('send 100000'); target.command('shutwr');
      expect(await first(client)).toMatchObject({ event: 'fin', bytes: 100000, ok: true });
    } finally { await stop(); }
  });

  it('--latency: bytes arrive late but all of them, FIN after them', async () => {
    const { target, client, stop } = await through(['--latency', '200']);
    try {
      const started = Date.now();
      target.command('send 5000'); target.command('shutwr');
      expect(await first(client)).toMatchObject({ event: 'fin', bytes: 5000, ok: true });
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    } finally { await stop(); }
  });

  it("passes the target's RST on as an RST after every byte, over IPv6", async () => {
    const { target, client, proxy, stop } = await through(['--json'], '::1');
    try {
      target.command('send 65536');
      await new Promise((r) => setTimeout(r, 200));
      target.command('reset');
      expect(await first(client)).toMatchObject({ event: 'rst', bytes: 65536, ok: true });
      const line = JSON.parse(await proxy.next());
      expect(line).toMatchObject({ targetToClient: { bytes: 65536, ending: 'RST' }, reason: 'reset', by: 'target', error: 'ECONNRESET' });
      expect(line.client).toMatch(/^\[::1\]:\d+$/);
    } finally { await stop(); }
  }, 30_000);

  it('SIGINT resets open connections, logs them and exits 0', async () => {
    const { target, client, proxy } = await through([]);
    client.command('send 1234');
    await new Promise((r) => setTimeout(r, 200));
    proxy.child.kill('SIGINT');
    expect(await first(client)).toMatchObject({ event: 'rst' });
    expect(await first(target)).toMatchObject({ event: 'rst', bytes: 1234 });
    expect(await proxy.next()).toMatch(/client->target 1234 B RST .*aborted/);
    expect(await proxy.exit).toBe(0);
    client.kill(); target.kill();
  });

  it('usage errors exit 2 with a message; --help documents every option', () => {
    for (const args of [[], ['--listen', '127.0.0.1:0'], ['--listen', 'nope', '--target', '127.0.0.1:1'],
      ['--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--reset-after', '-1'], ['--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--bogus'],
      ['--listen', '127.0.0.1:0', '--target', '127.0.0.1:1', '--linger', '99999999999']]) {
      const run = spawnSync(process.execPath, [cli, 'proxy', ...args], { encoding: 'utf8' });
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr).toMatch(/^socket-linger proxy: /);
    }
    const help = spawnSync(process.execPath, [cli, 'proxy', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    for (const option of ['--listen', '--target', '--json', '--reset-after', '--reset-upstream-after', '--fin-after', '--rst-on-fin', '--linger', '--delay-close', '--latency', '--idle-timeout'])
      expect(help.stdout).toContain(option);
  });
  it('usage errors name the option and what is wrong, on stderr, exit 2', () => {
    const base = ['--listen', '127.0.0.1:0', '--target', '127.0.0.1:1'];
    // [argv, the message after 'socket-linger proxy: ']
    const cases: [string[], string][] = [
      [['--target', '127.0.0.1:1'], '--listen HOST:PORT is required'],
      [['--listen', '127.0.0.1:0'], '--target HOST:PORT is required'],
      [['--listen', 'nope', '--target', '127.0.0.1:1'], "--listen needs HOST:PORT (IPv6: [::1]:PORT), got 'nope'"],
      // the whole text must be HOST:PORT: nothing before (a second colon) nor after the port
      [['--listen', '127.0.0.1:0', '--target', 'a:b:80'], "--target needs HOST:PORT (IPv6: [::1]:PORT), got 'a:b:80'"],
      [['--listen', '127.0.0.1:0', '--target', '127.0.0.1:80x'], "--target needs HOST:PORT (IPv6: [::1]:PORT), got '127.0.0.1:80x'"],
      [['--listen', '127.0.0.1:65536', '--target', '127.0.0.1:1'], '--listen: port 65536 is out of range (0-65535)'],
      // 65535 is a valid port: parsing goes on to the target's port 0
      [['--listen', '127.0.0.1:65535', '--target', '127.0.0.1:0'], '--target needs a port other than 0'],
      [['--listen', '127.0.0.1:0', '--target', '[127.0.0.1]:80'], "--target: '127.0.0.1' is not an IPv6 address"],
      [[...base, 'extra'], 'Unexpected argument: extra'],
      [[...base, '--reset-after', '1', '--fin-after', '1'], '--reset-after and --fin-after exclude each other'],
      // milliseconds are capped at what setTimeout takes (2^31 - 1)
      [[...base, '--latency', '2147483648'], '--latency must be an integer from 0 to 2147483647 (got "2147483648")'],
    ];
    for (const [args, message] of cases) {
      const run = spawnSync(process.execPath, [cli, 'proxy', ...args], { encoding: 'utf8', timeout: 10_000 }); // bounded: wrongly accepted arguments would run a proxy
      expect(run.status, args.join(' ')).toBe(2);
      expect(run.stderr.split('\n')[0], args.join(' ')).toBe(`socket-linger proxy: ${message}`);
      expect(run.stdout).toBe('');
    }
  });

  it('a port already taken: one line naming it and the code on stderr, exit 1', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const { port } = taken.address() as net.AddressInfo;
    try {
      const run = spawnSync(process.execPath, [cli, 'proxy', '--listen', `127.0.0.1:${port}`, '--target', '127.0.0.1:1'], { encoding: 'utf8' });
      expect(run.status).toBe(1);
      expect(run.stderr).toBe(`socket-linger proxy: cannot listen on 127.0.0.1:${port}: EADDRINUSE\n`);
    } finally { taken.close(); }
  });
});
