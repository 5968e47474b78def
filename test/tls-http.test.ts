import { describe, expect, it } from 'vitest';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as http from 'node:http';
import * as https from 'node:https';
import { once } from 'node:events';
import { getLinger, getTcpInfo, setLinger, shutdown } from '../dist/index.js';
import { connectPair, fixtures, tlsPair, waitForState, watchPeer } from './helpers';

describe('TLS sockets', () => {
  it('set/get linger on both ends of tls.connect / tls.Server', async () => {
    const pair = await tlsPair();
    setLinger(pair.client, true, 3);
    setLinger(pair.peer, true, 4);
    expect(getLinger(pair.client)).toEqual({ enabled: true, seconds: 3 });
    expect(getLinger(pair.peer)).toEqual({ enabled: true, seconds: 4 });
    await pair.close();
  });

  it('linger 0 then destroy() resets the TLS peer', async () => {
    const pair = await tlsPair();
    const view = watchPeer(pair.peer);
    setLinger(pair.client, true, 0);
    pair.client.destroy();
    expect((await view.done).outcome).toBe('RST');
    await pair.close();
  });

  it('a TLSSocket wrapping an existing net.Socket reaches the same OS socket', async () => {
    const server = tls.createServer({ ...fixtures });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const raw = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(raw, 'connect');
    const wrapped = tls.connect({ socket: raw, rejectUnauthorized: false });
    await once(wrapped, 'secureConnect');
    setLinger(wrapped, true, 8);
    expect(getLinger(raw)).toEqual({ enabled: true, seconds: 8 });
    wrapped.destroy();
    server.close();
  });

  it("shutdown(tls, 'write') sends close_notify and FIN after the data", async () => {
    const pair = await tlsPair();
    const received: Buffer[] = [];
    pair.peer.on('data', (c: Buffer) => received.push(c));
    const peerEnded = once(pair.peer, 'end');
    pair.client.write('secret');
    shutdown(pair.client, 'write');
    await peerEnded;
    expect(Buffer.concat(received).toString()).toBe('secret');
    await waitForState(pair.peer, 'CLOSE_WAIT');
    await pair.close();
  });

  it("shutdown(tls, 'read'): local end, late data resets", async () => {
    const pair = await tlsPair();
    pair.client.resume();
    const ended = once(pair.client, 'end');
    shutdown(pair.client, 'read');
    await ended;
    const clientError = new Promise<NodeJS.ErrnoException>((r) => pair.client.once('error', r));
    pair.peer.write('late');
    expect((await clientError).code).toBe('ECONNRESET');
    await pair.close();
  });
});

describe('http / https servers', () => {
  it('setLinger on an http server reaches the sockets it serves', async () => {
    const seen: { enabled: boolean; seconds: number }[] = [];
    const server = http.createServer((req, res) => {
      seen.push(getLinger(req.socket));
      res.end('ok');
    });
    setLinger(server, true, 0);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const res = await fetch(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`);
    expect(await res.text()).toBe('ok');
    expect(seen).toEqual([{ enabled: true, seconds: 0 }]);
    server.closeAllConnections();
    server.close();
  });

  it('an http handler can reset its connection instead of answering', async () => {
    const server = http.createServer((req) => {
      setLinger(req.socket, true, 0);
      req.socket.destroy();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const view = watchPeer(client);
    client.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect((await view.done).outcome).toBe('RST');
    server.close();
  });

  it('https server sockets', async () => {
    const server = https.createServer({ ...fixtures }, (req, res) => {
      setLinger(req.socket, true, 12);
      res.end(JSON.stringify(getLinger(req.socket)));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const body = await new Promise<string>((resolve, reject) => {
      https.get({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false }, (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    expect(JSON.parse(body)).toEqual({ enabled: true, seconds: 12 });
    server.closeAllConnections();
    server.close();
  });
});

describe('getTcpInfo', () => {
  it('reports states and send-queue bytes from the kernel', async () => {
    const pair = await connectPair();
    expect(getTcpInfo(pair.client)).toEqual({ state: 'ESTABLISHED', unsentBytes: 0, unackedBytes: 0 });
    expect(getTcpInfo(pair.server as net.Server).state).toBe('LISTEN');
    pair.client.end();
    await waitForState(pair.peer, 'CLOSE_WAIT');
    await waitForState(pair.client, 'FIN_WAIT_2');
    await pair.close();
  });
});
