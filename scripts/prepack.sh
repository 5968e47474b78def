#!/usr/bin/env bash
# npm's prepack (npm pack, npm publish): compiles dist/ and makes sure the
# tarball carries the prebuilds.
#  - Prebuilds this machine can make are built when missing or older than
#    native/ or binding.gyp: the host's own (scripts/prebuild-linux.sh, via
#    prebuildify), and on a Linux x64 host with g++-aarch64-linux-gnu
#    installed, linux-arm64 (scripts/prebuild-arm64.sh).
#  - The others (macOS, Windows) come from CI artifacts (release.yml puts
#    them in prebuilds/ first) or their own scripts (npm run build:win32).
#  - Lists what will be packed and warns about each missing platform.
#    SOCKET_LINGER_REQUIRE_PREBUILDS="linux-x64 win32-x64 ..." (or "all")
#    turns a missing or stale one of those into an error (release job).
#    SOCKET_LINGER_SKIP_PREBUILD=1 builds nothing native.
#  - Gives the tarball a package.json whose only script is `install` (what
#    users run): the checkout's own `prepare` (its TypeScript build) and the
#    developer scripts would only make npm 11 list them at every install.
#    postpack (scripts/postpack.sh) puts the checkout's package.json back; a
#    copy left by an interrupted pack is put back here first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[prepack] %s\n' "$*" >&2; }

ALL="linux-x64 linux-arm64 darwin-x64 darwin-arm64 win32-x64 win32-arm64"
required=${SOCKET_LINGER_REQUIRE_PREBUILDS:-}
[ "$required" = all ] && required=$ALL

[ ! -f package.json.orig ] || { log "package.json.orig left by an interrupted pack: restored"; mv package.json.orig package.json; }
npm run --silent build:ts >&2

# prebuild_state TARGET: "missing", "stale" (older than native/ or
# binding.gyp) or "fresh <file> <bytes>".
prebuild_state() {
  node -e '
    const fs = require("fs"), path = require("path");
    const mtime = (f) => fs.statSync(f).mtimeMs;
    const sources = ["binding.gyp", ...fs.readdirSync("native").map((f) => path.join("native", f))];
    const newest = Math.max(...sources.map(mtime));
    const dir = path.join("prebuilds", process.argv[1]);
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".node")) : [];
    if (!files.length) { console.log("missing"); process.exit(); }
    const file = path.join(dir, files[0]);
    console.log(mtime(file) + 1000 < newest ? `stale ${file}` : `fresh ${file} ${fs.statSync(file).size}`);
  ' "$1"
}
is_fresh() { [ "$(prebuild_state "$1" | cut -d' ' -f1)" = fresh ]; }

host="$(node -p 'process.platform + "-" + process.arch')"
if [ "${SOCKET_LINGER_SKIP_PREBUILD:-}" != 1 ]; then
  if [ "${host%%-*}" != win32 ] && ! is_fresh "$host"; then
    log "building the $host prebuild"
    bash scripts/prebuild-linux.sh
  fi
  if [ "$host" = linux-x64 ] && ! is_fresh linux-arm64; then
    if command -v aarch64-linux-gnu-g++ >/dev/null 2>&1; then
      log "building the linux-arm64 prebuild"
      bash scripts/prebuild-arm64.sh
    else
      log "no aarch64-linux-gnu-g++: linux-arm64 not built (npm run prebuild:arm64 installs it)"
    fi
  fi
fi

status=0
log "prebuilds in the package:"
for target in $ALL; do
  state=$(prebuild_state "$target")
  log "  $target: $state"
  if [[ " $required " == *" $target "* ]] && [ "${state%% *}" != fresh ]; then
    log "  error: $target is required (SOCKET_LINGER_REQUIRE_PREBUILDS)"
    status=1
  fi
done
[ $status -eq 0 ] || exit $status

cp package.json package.json.orig
node -e '
  const fs = require("fs");
  const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
  pkg.scripts = { install: pkg.scripts.install };
  fs.writeFileSync("package.json", JSON.stringify(pkg, null, 2) + "\n");
'
log "package.json in the package: scripts { install } only (postpack restores the checkout's)"
