#!/usr/bin/env bash
# npm run prebuild: prebuilds/linux-x64/socket-linger.glibc.node (Node-API,
# any Node >= 18.17) built here with prebuildify, stripped, checked for
# glibc <= 2.28 and loaded once through node-gyp-build.
# On another host (macOS, Windows, linux-arm64 natively) it builds that
# host's prebuild; the glibc check runs on Linux only. build/ is not touched.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$SECONDS
[ -x node_modules/.bin/prebuildify ] || npm install --no-audit --no-fund --ignore-scripts >&2

platform=$(node -p process.platform) arch=$(node -p process.arch)
# Linux prebuilds carry a libc tag: node-gyp-build on musl (Alpine) then
# skips them and compiles instead of loading a glibc binary.
tags=() out="prebuilds/$platform-$arch/socket-linger.node"
if [ "$platform" = linux ]; then tags=(--tag-libc) out="prebuilds/$platform-$arch/socket-linger.glibc.node"; fi
# Node-API: the target version only picks the headers node-gyp uses: the
# running node's, from its own install prefix when it ships them (no
# download), else from nodejs.org.
if [ -z "${npm_config_nodedir:-}" ]; then
  prefix=$(node -p 'require("path").resolve(process.execPath, "..", "..")')
  if [ -f "$prefix/include/node/node_api.h" ] && [ -f "$prefix/include/node/common.gypi" ]; then
    export npm_config_nodedir="$prefix"
  fi
fi
# Built in a staging copy so that build/ (npm test's build) is left alone.
STAGE="$ROOT/.tools/prebuild-$platform-$arch"
rm -rf "$STAGE" && mkdir -p "$STAGE"
cp package.json binding.gyp "$STAGE/" && cp -r native "$STAGE/native"
(cd "$STAGE" && "$ROOT/node_modules/.bin/prebuildify" --napi --strip "${tags[@]}" \
  --target "$(node -p process.versions.node)" --out "$ROOT")
[ -f "$out" ] || { echo "prebuild-linux: $out was not produced" >&2; exit 1; }
if [ "$platform" = linux ]; then bash scripts/check-glibc.sh "$out"; fi
PREBUILDS_ONLY=1 node -e '
  const p = require("node-gyp-build").path(process.argv[1]);
  require(p);
  console.error("node-gyp-build loads " + require("path").relative(process.argv[1], p));
' "$ROOT"
echo "prebuild: $out ($(wc -c <"$out") bytes) in $((SECONDS - start)) s" >&2
