'use strict';
// Run by test/runtimes/run.cjs under Deno < 2.8 (no fdForIpc): every
// function must refuse with ERR_UNSUPPORTED_RUNTIME naming the runtime,
// not crash at load and not say ERR_INVALID_HANDLE_TYPE. Prints one JSON line.
const net = require('node:net');
const path = require('node:path');
const sl = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));
(async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const client = net.connect(server.address().port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  const seen = [];
  const note = (error) => seen.push(error ? `${error.code}: ${error.message}` : 'no error');
  for (const call of [() => sl.getLinger(client), () => sl.setLinger(client, true, 1), () => sl.setLinger(server, true, 1),
    () => sl.getTcpInfo(client), () => sl.shutdown(client, 'write')]) {
    try { call(); note(null); } catch (error) { note(error); }
  }
  for (const call of [() => sl.closeSocket(client), () => sl.abortiveClose(client), () => sl.gracefulShutdown(client)]) {
    await call().then(() => note(null), note);
  }
  console.log(JSON.stringify({ version: process.versions.deno, seen }));
  process.exit(0);
})();
