#!/usr/bin/env bash
# npm run test:pack: what a user installs. Packs the package (prepack builds
# dist/ and the prebuilds this machine can make), checks the tarball holds
# only package.json, README.md, LICENSE, binding.gyp, dist/ (no source maps),
# native/ and prebuilds/, and that its package.json has no script but the
# install (the checkout's own is back after the pack), installs it into an
# empty project with no working compiler (cc, c++, gcc, g++, clang, make,
# python3 on PATH are fakes that fail and record the call) where npm may warn
# of nothing but that install script, then requires it (CJS, and ESM with
# named and default imports), sets linger on a
# real socket and reads it back, and runs
# `npx socket-linger matrix --json --bytes 1048576`.
# Ends with "N passed, N failed"; exit status 1 on any failure.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$SECONDS
log() { printf '[pack] %s\n' "$*" >&2; }
passed=0 failed=0
check() {  # check NAME COMMAND...: one result line
  local name=$1; shift
  local out; out=$("$@" 2>&1); local rc=$?
  if [ $rc -eq 0 ]; then passed=$((passed + 1)); echo "ok - $name"; printf '%s\n' "$out" | grep '^#' || true
  else failed=$((failed + 1)); echo "not ok - $name"; printf '%s\n' "$out" | tail -25 | sed 's/^/#   /'; fi
  return 0
}
note() { echo "# $*"; }
finish() {
  log "done in $((SECONDS - start)) s"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/socket-linger-pack.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
host="$(node -p 'process.platform + "-" + process.arch')"

# ---- pack (runs prepack and postpack)
log "npm pack"
cp package.json "$WORK/package.json.checkout"
if ! npm pack --silent --pack-destination "$WORK" >"$WORK/pack.out" 2>"$WORK/pack.err"; then
  cat "$WORK/pack.err" >&2
  failed=$((failed + 1)); echo "not ok - npm pack"; finish
fi
TARBALL="$WORK/$(tail -1 "$WORK/pack.out")"
grep '^\[prepack\]' "$WORK/pack.err" | sed 's/^/# /'
passed=$((passed + 1)); echo "ok - npm pack: $(basename "$TARBALL") ($(wc -c <"$TARBALL" | tr -d ' ') bytes)"
tar -tzf "$TARBALL" | sed 's|^package/||' | sort >"$WORK/contents.txt"
sed 's/^/#   /' "$WORK/contents.txt"

tarball_contents() {
  local bad
  bad=$(grep -vE '^(package\.json|README\.md|LICENSE|binding\.gyp|dist/([a-z0-9-]+/)?[^/]+\.(js|mjs|d\.ts|d\.mts)|native/[^/]+\.(cc|h)|prebuilds/[a-z0-9]+-[a-z0-9]+/[^/]+\.node)$' "$WORK/contents.txt")
  [ -z "$bad" ] || { echo "unexpected files:"; echo "$bad"; return 1; }
  for f in package.json README.md LICENSE binding.gyp dist/index.js dist/index.mjs dist/index.d.ts \
           dist/index.d.mts dist/cli.js dist/http.js dist/http.mjs dist/http.d.ts dist/http.d.mts \
           dist/http/lingering.js dist/http/drain.js native/addon.cc; do
    grep -qxF "$f" "$WORK/contents.txt" || { echo "missing $f"; return 1; }
  done
  grep -q "^prebuilds/$host/" "$WORK/contents.txt" || { echo "no prebuild for $host"; return 1; }
  # The platforms a release must carry (CI sets them; prepack refuses stale ones).
  local target
  for target in ${SOCKET_LINGER_REQUIRE_PREBUILDS:-}; do
    [ "$target" = all ] && continue
    grep -q "^prebuilds/$target/" "$WORK/contents.txt" || { echo "no prebuild for $target"; return 1; }
  done
}
check "tarball holds only package.json, README, LICENSE, binding.gyp, dist/, native/, prebuilds/" tarball_contents

# Users get one script, the install; the checkout keeps all of its own.
published_scripts() {
  local scripts
  scripts=$(tar -xzOf "$TARBALL" package/package.json | node -e 'console.log(JSON.stringify(JSON.parse(require("fs").readFileSync(0, "utf8")).scripts))')
  note "scripts in the packed package.json: $scripts"
  [ "$scripts" = '{"install":"node-gyp-build"}' ] || { echo "expected only the install script"; return 1; }
  cmp -s package.json "$WORK/package.json.checkout" || { echo "npm pack left package.json changed:"; diff "$WORK/package.json.checkout" package.json; return 1; }
  [ ! -e package.json.orig ] || { echo "npm pack left package.json.orig"; return 1; }
}
check "packed package.json: only the install script (no prepare); the checkout's is back as it was" published_scripts

# The Linux prebuilds in it: glibc <= 2.28, no libstdc++ versions.
mkdir -p "$WORK/unpacked" && tar -xzf "$TARBALL" -C "$WORK/unpacked"
for file in "$WORK"/unpacked/package/prebuilds/linux-*/*.node; do
  [ -f "$file" ] || continue
  target=$(basename "$(dirname "$file")") objdump=objdump
  [ "$target" = linux-arm64 ] && command -v aarch64-linux-gnu-objdump >/dev/null && objdump=aarch64-linux-gnu-objdump
  glibc() { OBJDUMP=$objdump bash "$ROOT/scripts/check-glibc.sh" "$file" 2.28 2>&1 | sed "s|$WORK/unpacked/package/||; s/^/# /"; return "${PIPESTATUS[0]}"; }
  check "$target prebuild: glibc <= 2.28, no GLIBCXX" glibc
done

# ---- an empty project, no compiler
FAKEBIN="$WORK/fakebin" APP="$WORK/app"
mkdir -p "$FAKEBIN" "$APP"
for tool in cc c++ gcc g++ clang clang++ make gmake python python3; do
  cat >"$FAKEBIN/$tool" <<FAKE
#!/bin/sh
echo "$tool \$*" >>"$WORK/compiler-calls.log"
echo "$tool: not available (scripts/test-pack.sh)" >&2
exit 127
FAKE
  chmod +x "$FAKEBIN/$tool"
done
echo '{ "name": "pack-test-app", "version": "1.0.0", "private": true }' >"$APP/package.json"
export PATH="$FAKEBIN:$PATH"
unset CC CXX LINK PYTHON npm_config_python NODE_GYP_FORCE_PYTHON
cd "$APP"

no_compiler() {
  g++ --version && { echo "g++ works"; return 1; }
  # node-gyp (npm's own) must fail to build the installed package.
  local gyp; gyp="$(dirname "$(realpath "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$gyp" ] || gyp="$ROOT/node_modules/node-gyp/bin/node-gyp.js"
  local copy="$WORK/gyp-try"; mkdir -p "$copy"
  tar -xzf "$TARBALL" -C "$copy" --strip-components=1
  mkdir -p "$copy/node_modules"; ln -s "$ROOT/node_modules/node-addon-api" "$copy/node_modules/node-addon-api"
  if (cd "$copy" && node "$gyp" rebuild) >"$WORK/gyp-try.log" 2>&1; then
    echo "node-gyp compiled the package"; return 1
  fi
  note "node-gyp failed as it should: $(grep -m1 -iE 'not available|python' "$WORK/gyp-try.log")"
}
check "no compiler: fake cc/g++/make/python3 first on PATH, node-gyp cannot build" no_compiler
rm -f "$WORK/compiler-calls.log"

log "npm install <tarball> in an empty project"
install() {
  npm install --no-audit --no-fund --foreground-scripts "$TARBALL" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log"; return 1; }
  if grep -q '^> node-gyp-build' "$WORK/install.log"; then
    note "npm ran the package's install script (node-gyp-build found the prebuild, compiled nothing)"
  else
    note "npm skipped the package's install script (allowScripts): the prebuild is found at require time"
  fi
  grep -E 'install-scripts' "$WORK/install.log" | head -3 | sed 's/^/#   /'
  # npm's only warning: npm 11's list of unapproved install scripts, where
  # this package is the only one and shows its install script alone.
  local other listed
  other=$(grep -iE '^npm (warn|error)' "$WORK/install.log" | grep -v '^npm warn install-scripts')
  [ -z "$other" ] || { echo "npm warned:"; echo "$other"; return 1; }
  listed=$(grep -E '^npm warn install-scripts   ' "$WORK/install.log" | sed 's/^npm warn install-scripts *//')
  [ -z "$listed" ] || [[ "$listed" =~ ^socket-linger@[^[:space:]]+\ \(install:\ node-gyp-build\)$ ]] ||
    { echo "install scripts npm lists: $listed"; return 1; }
  [ ! -s "$WORK/compiler-calls.log" ] || { echo "the install tried to compile:"; cat "$WORK/compiler-calls.log"; return 1; }
  [ ! -d node_modules/socket-linger/build ] || { echo "node_modules/socket-linger/build exists"; return 1; }
}
check "npm install of the tarball succeeds without compiling, npm warns of nothing but its install script" install

cat >use.cjs <<'JS'
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { once } = require('node:events');
const sl = require('socket-linger');
(async () => {
  const dir = path.dirname(require.resolve('socket-linger/package.json'));
  const addon = require(require.resolve('node-gyp-build', { paths: [dir] })).path(dir);
  assert.match(addon, /[\\/]prebuilds[\\/]/);
  const server = net.createServer({ pauseOnConnect: true }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect(server.address().port, '127.0.0.1');
  const [peer] = await Promise.all([once(server, 'connection'), once(client, 'connect')]);
  sl.setLinger(client, true, 7);
  assert.deepEqual(sl.getLinger(client), { enabled: true, seconds: 7 });
  sl.setLinger(client, true, 0);
  const r = await sl.closeSocket(client);
  assert.equal(r.type, 'abortive');
  peer[0].destroy(); server.close();
  console.log(`# CJS: loaded ${path.relative(dir, addon)}; closeSocket ${JSON.stringify(r)}`);
})().catch((e) => { console.error(e); process.exit(1); });
JS
cat >use.mjs <<'JS'
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import sl, { setLinger, getLinger, getTcpInfo, LINGER_MAX_SECONDS } from 'socket-linger';
assert.equal(sl.setLinger, setLinger); // the default export: the same functions
const server = net.createServer({ pauseOnConnect: true }).listen(0, '127.0.0.1');
await once(server, 'listening');
const client = net.connect(server.address().port, '127.0.0.1');
const [[peer]] = await Promise.all([once(server, 'connection'), once(client, 'connect')]);
setLinger(client, true, LINGER_MAX_SECONDS);
assert.deepEqual(getLinger(client), { enabled: true, seconds: LINGER_MAX_SECONDS });
assert.equal(getTcpInfo(client).state, 'ESTABLISHED');
client.destroy(); peer.destroy(); server.close();
console.log('ESM ok');
JS
check "require('socket-linger') (CJS): setLinger/getLinger on a real socket, from the prebuild" node use.cjs
# As if npm had blocked the install script: nothing but the files.
ignored() {
  mkdir -p "$WORK/app2" && cd "$WORK/app2" && cp "$APP/package.json" "$APP/use.cjs" . &&
    npm install --no-audit --no-fund --ignore-scripts "$TARBALL" >/dev/null && node use.cjs
}
check "npm install --ignore-scripts: the package still loads (CJS)" ignored
check "import from 'socket-linger' (ESM, named and default): setLinger/getLinger/getTcpInfo" node use.mjs

cat >use-http.cjs <<'JS'
const assert = require('node:assert/strict');
const http = require('node:http');
const { once } = require('node:events');
const { lingeringClose, drainServer } = require('socket-linger/http');
(async () => {
  const server = http.createServer((req, res) => res.end('ok')).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const uninstall = lingeringClose(server);
  const body = await (await fetch(`http://127.0.0.1:${server.address().port}/`)).text();
  assert.equal(body, 'ok');
  const r = await drainServer(server, { timeout: 2000 });
  assert.equal(r.abortive, 0);
  uninstall();
  console.log(`# socket-linger/http (CJS): ${JSON.stringify({ ...r, results: r.results.length })}`);
})().catch((e) => { console.error(e); process.exit(1); });
JS
cat >use-http.mjs <<'JS'
import assert from 'node:assert/strict';
import slHttp, { lingeringClose, drainServer, DEFAULT_LINGERING_MAX_BYTES } from 'socket-linger/http';
assert.equal(slHttp.drainServer, drainServer);
assert.equal(typeof lingeringClose, 'function');
assert.equal(typeof drainServer, 'function');
assert.equal(typeof DEFAULT_LINGERING_MAX_BYTES, 'number');
console.log('ESM http ok');
JS
check "require('socket-linger/http') (CJS): lingeringClose and drainServer on a real server" node use-http.cjs
check "import from 'socket-linger/http' (ESM, named and default)" node use-http.mjs

matrix() {
  npx --no-install socket-linger matrix --json --bytes 1048576 >"$WORK/matrix.json" || { cat "$WORK/matrix.json"; return 1; }
  node -e '
    const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (!m.ok || !m.rows.length) { console.log(JSON.stringify(m, null, 1)); process.exit(1); }
    console.log(`# matrix: ${m.rows.length} rows, ok (${m.platform}-${m.arch} ${m.node})`);
  ' "$WORK/matrix.json"
}
check "npx socket-linger matrix --json --bytes 1048576" matrix
[ ! -s "$WORK/compiler-calls.log" ] || { echo "not ok - a compiler was called:"; cat "$WORK/compiler-calls.log"; failed=$((failed + 1)); }
finish
