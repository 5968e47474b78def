// Never run: `npm run typecheck` checks the types an ES module user gets from
// the default exports (resolved by name, through package.json's "exports").
import sl, { setLinger, type CloseResult } from 'socket-linger';
import slHttp, { drainServer } from 'socket-linger/http';

export const sameSetLinger: typeof setLinger = sl.setLinger;
export const sameDrainServer: typeof drainServer = slHttp.drainServer;
export const closing: Promise<CloseResult> = sl.closeSocket(null as never);
// @ts-expect-error the default export has only the package's functions
sl.notAnExport();
