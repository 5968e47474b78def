#!/usr/bin/env bash
# npm run bench:windows: the cost of the Windows socket lookup (a uv_walk over
# the loop's handles) and of the per-handle cache that avoids it, with 100,
# 1,000 and 10,000 open TCP handles, measured by a real node.exe under Wine:
# bench/win32-lookup.cjs. Builds dist/ and prebuilds/win32-x64/socket-linger.node
# first (as scripts/test-windows.sh does) and installs what is missing
# (scripts/win32-tools.sh).
#
# Environment: BENCH_WIN32_HANDLES (default "100,1000,10000"), BENCH_WIN32_OUT
# (JSON, default .tools/bench-windows.json), BENCH_WIN32_LEVEL_MS (per size,
# 4000), BENCH_WIN32_CPUS (taskset list, default the last CPU; "" unpinned),
# BENCH_WIN32_TIMEOUT (s, 1800).
#
# Its own Wine prefix (.tools/wineprefix-bench), so its wineserver is never the
# one a concurrent `npm run test:windows` uses (or stops). node.exe under Wine
# dies with EBADF when its stdio is a Unix pipe: its output goes to a file
# that is printed afterwards. Wine is not Windows: the figures compare with
# each other only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/win32-tools.sh"
start=$SECONDS

ensure_wine
ensure_node_exe
build_dist_and_win32

# Under Wine every SOCKET is a Unix descriptor (in the wineserver and in
# node.exe): 10,000 handles need ulimit -n above 10,000. With 20,000, opening
# stopped with EMFILE at 19,701 handles (see bench/win32-lookup.cjs).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

use_wine_prefix "${BENCH_WINEPREFIX:-$TOOLS/wineprefix-bench}"

# node.exe and its wineserver pinned to one CPU: every getsockname/getsockopt
# under Wine is a round trip to the wineserver, ~20 us on one CPU but ~80 us
# when it has to wake another (virtual) CPU, and which one a call gets drifts
# during a run. BENCH_WIN32_CPUS="" runs unpinned; the ratios hold either way.
CPUS="${BENCH_WIN32_CPUS-$(($(nproc) - 1))}"
pin=()
if [ -n "$CPUS" ] && command -v taskset >/dev/null; then
  pin=(taskset -c "$CPUS")
  wineserver -k >/dev/null 2>&1 || true # a wineserver left running would not be pinned
else
  CPUS=
fi

OUT="$TOOLS/bench-windows.out"
log "${pin[*]:+${pin[*]} }wine ${NODE_EXE#$ROOT/} bench/win32-lookup.cjs (open files: $(ulimit -n))"
status=0
(cd "$ROOT" && SOCKET_LINGER_WINE=1 BENCH_WINE_VERSION="$(wine --version 2>/dev/null || echo wine)" \
  BENCH_CPUS="$CPUS" BENCH_FD_LIMIT="$(ulimit -n)" timeout "${BENCH_WIN32_TIMEOUT:-1800}" "${pin[@]}" wine "$NODE_EXE" bench/win32-lookup.cjs \
  >"$OUT" 2>&1 </dev/null) || status=$?
cat "$OUT"
[ "$status" -eq 0 ] || log "node.exe exited with $status: figures up to the last size measured are in ${BENCH_WIN32_OUT:-.tools/bench-windows.json}"
wineserver -k >/dev/null 2>&1 || true
log "done in $((SECONDS - start)) s (exit $status)"
exit $status
