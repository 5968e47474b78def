#!/usr/bin/env bash
# Builds the addon with extra compiler/linker flags into its own directory,
# never touching build/ (the normal build other runs on this machine use).
#
#   bash scripts/build-addon-variant.sh NAME "CFLAGS" "LDFLAGS"
#
# Output: node_modules/.cache/socket-linger/NAME/build/Release/socket_linger.node
# (prints that directory). Load it with SOCKET_LINGER_PREBUILD=<that directory>:
# node-gyp-build then takes it instead of build/ or prebuilds/.
# The -static-libstdc++/-static-libgcc of binding.gyp are dropped in variants
# (sanitizer runtimes must interpose operator new/delete).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME="$1" CFLAGS_EXTRA="$2" LDFLAGS_EXTRA="${3:-}"
DIR="$ROOT/node_modules/.cache/socket-linger/$NAME"
rm -rf "$DIR"
mkdir -p "$DIR"
cp -r "$ROOT/native" "$DIR/native"
ln -s "$ROOT/node_modules" "$DIR/node_modules"
echo '{"name":"socket-linger","private":true}' > "$DIR/package.json"
node - "$ROOT/binding.gyp" "$DIR/binding.gyp" "$CFLAGS_EXTRA" "$LDFLAGS_EXTRA" <<'JS'
const fs = require('fs');
const [from, to, cflags, ldflags] = process.argv.slice(2);
// binding.gyp is a Python literal that JSON happens to parse (no comments here).
const gyp = JSON.parse(fs.readFileSync(from, 'utf8'));
const target = gyp.targets.find((t) => t.target_name === 'socket_linger');
const split = (s) => s.split(/\s+/).filter(Boolean);
target.cflags = [...(target.cflags || []), ...split(cflags)];
target.cflags_cc = [...(target.cflags_cc || []), ...split(cflags)];
target.ldflags = [...(target.ldflags || []), ...split(ldflags)];
for (const c of target.conditions || []) {
  const body = c[1];
  if (body && body.ldflags) body.ldflags = body.ldflags.filter((f) => !/^-static-lib(stdc\+\+|gcc)$/.test(f));
}
fs.writeFileSync(to, JSON.stringify(gyp, null, 2));
JS
# Node's headers: wherever npm's own builds take them from (nodedir), if set.
nodedir="${npm_config_nodedir:-$(cd "$ROOT" && npm config get nodedir 2>/dev/null || true)}"
gyp_args=(rebuild)
case "$nodedir" in ''|undefined|null) ;; *) gyp_args+=(--nodedir="$nodedir") ;; esac
(cd "$DIR" && "$ROOT/node_modules/.bin/node-gyp" "${gyp_args[@]}" >"$DIR/build.log" 2>&1) || {
  tail -40 "$DIR/build.log" >&2
  exit 1
}
echo "$DIR"
