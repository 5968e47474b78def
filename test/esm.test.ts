// The package as an ES module user loads it: `import sl from 'socket-linger'`
// and `socket-linger/http`, by name through package.json's "exports", in a
// child Node (test/fixtures/esm-default.mjs). The peer is python3.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pyEnd, runProcess } from './helpers';

const fixture = join(__dirname, 'fixtures', 'esm-default.mjs');
const INDEX_NAMES = [
  'DEFAULT_RELAY_FLUSH_TIMEOUT_MS', 'DEFAULT_SHUTDOWN_TIMEOUT_MS', 'LINGER_MAX_SECONDS', 'abortiveClose',
  'closeSocket', 'getLinger', 'getTcpInfo', 'gracefulShutdown', 'relay', 'setLinger', 'shutdown',
];
const HTTP_NAMES = ['DEFAULT_DRAIN_TIMEOUT_MS', 'DEFAULT_LINGERING_MAX_BYTES', 'drainServer', 'lingeringClose'];

describe('ES module default exports', () => {
  it("import sl from 'socket-linger' is require()'s object; its abortiveClose reaches the peer as an RST", async () => {
    const peer = pyEnd({ listen: true });
    try {
      const { port } = await peer.next('listening');
      const out = await runProcess(process.execPath, [fixture, String(port)]);
      expect(out.code, out.stderr).toBe(0);
      const report = JSON.parse(out.stdout.trim().split('\n').pop()!);
      expect(report.index).toEqual({ isRequired: true, keys: INDEX_NAMES, names: INDEX_NAMES, sameValues: true });
      expect(report.http).toEqual({ isRequired: true, keys: HTTP_NAMES, names: HTTP_NAMES, sameValues: true });
      expect(report.linger).toEqual({ enabled: true, seconds: 0 });
      expect(report.close).toMatchObject({ type: 'abortive' });
      // The kernel's verdict, from the peer: a reset, no FIN.
      const end = await peer.next('rst');
      expect(end).toMatchObject({ rst: true, fin: false });
    } finally {
      peer.done.catch(() => {}); // killed, it never says 'done'
      peer.kill();
    }
  });
});
