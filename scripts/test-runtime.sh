#!/usr/bin/env bash
# npm run test:runtime -- bun|deno [VERSION]: the portable check suite
# (test/runtimes/run.cjs: test/portable's behaviour tests plus python3-peer
# checks and `socket-linger matrix`) under Bun (npm @oven/bun-linux-x64,
# default 1) or Deno (npm @deno/linux-x64-glibc, default 2), unpacked once
# into .tools/. The addon is Node-API: the build/ one serves every runtime.
# Ends with the suite's "N passed, N failed" line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_TAG=runtime
source "$ROOT/scripts/tools-common.sh"
cd "$ROOT"
which="${1:?usage: test-runtime.sh bun|deno [VERSION]}"
case "$which" in
  bun)
    version="${2:-1}"
    dir="$TOOLS/bun-linux-x64-$version"
    npm_unpack "@oven/bun-linux-x64@$version" "$dir" || { log "could not fetch @oven/bun-linux-x64@$version"; echo "0 passed, 1 failed"; exit 1; }
    run=("$dir/bin/bun" test/runtimes/run.cjs)
    ;;
  deno)
    version="${2:-2}"
    dir="$TOOLS/deno-linux-x64-glibc-$version"
    npm_unpack "@deno/linux-x64-glibc@$version" "$dir" || { log "could not fetch @deno/linux-x64-glibc@$version"; echo "0 passed, 1 failed"; exit 1; }
    # --allow-ffi loads the addon; the rest: loopback sockets, the fixtures,
    # a socket file in the temp dir, PREBUILDS_ONLY and friends, python3 peers
    # and the matrix child.
    # And the newest Deno without fdForIpc(), which must refuse by name.
    old="$TOOLS/deno-linux-x64-glibc-2.7"
    if npm_unpack "@deno/linux-x64-glibc@2.7" "$old"; then export SOCKET_LINGER_OLD_DENO="$old/deno"
    else log "could not fetch @deno/linux-x64-glibc@2.7: its check is left out"; fi
    run=("$dir/deno" run --allow-ffi --allow-net --allow-read --allow-write --allow-env --allow-run --allow-sys test/runtimes/run.cjs)
    ;;
  *) echo "usage: test-runtime.sh bun|deno [VERSION]" >&2; exit 2 ;;
esac
[ -f build/Release/socket_linger.node ] || npm run --silent build:native >&2
npm run --silent build:ts >&2
log "${run[0]} $("${run[0]}" --version | head -1)"
"${run[@]}"
