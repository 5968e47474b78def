#!/usr/bin/env bash
# npm run test:valgrind: the memcheck smoke script (test/memcheck/smoke.cjs:
# every function on real sockets, error paths, hostile native arguments) under
# valgrind memcheck, with the addon built -g -O1 in its own directory (build/
# is not touched). Node and V8 are noisy under memcheck (JIT code, their own
# allocators, leaks at exit), so only errors with a frame in the addon
# (socket_linger.node) count: invalid reads/writes, uses of uninitialised
# values, bad frees, and definitely lost blocks allocated by the addon.
# Fails if there is any, or if the smoke script fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$SECONDS
log() { echo "test-valgrind: $*" >&2; }
if ! command -v valgrind >/dev/null 2>&1; then
  log "installing valgrind"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
if [ -n "${VALGRIND_ADDON_DIR:-}" ]; then
  # A ready build to check instead (e.g. one with a bug injected on purpose,
  # to see this script fail): a directory with build/Release/socket_linger.node.
  VARIANT="$(cd "$VALGRIND_ADDON_DIR" && pwd)"
else
  log "building the addon with -g -O1"
  VARIANT="$(bash scripts/build-addon-variant.sh valgrind "-g -O1 -fno-omit-frame-pointer")"
fi
npx --no-install tsc -p tsconfig.build.json

OUT="$(mktemp -d "${TMPDIR:-/tmp}/socket-linger-valgrind.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT
export SOCKET_LINGER_PREBUILD="$VARIANT"

log "running test/memcheck/smoke.cjs under valgrind (slow)"
set +e
valgrind --tool=memcheck --smc-check=all-non-file --error-limit=no --num-callers=40 \
  --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
  --log-file="$OUT/memcheck.log" \
  node test/memcheck/smoke.cjs 2>&1 | tee "$OUT/smoke.out"
rc=${PIPESTATUS[0]}
set -e
grep -qF "smoke: addon $VARIANT/" "$OUT/smoke.out" || { log "the smoke script did not load $VARIANT"; echo "0 passed, 1 failed"; exit 1; }
log "smoke under valgrind: exit $rc, $((SECONDS - start)) s"

set +e
node - "$OUT/memcheck.log" "$ROOT/native" <<'JS'
const fs = require('fs');
const [file, nativeDir] = process.argv.slice(2);
// A frame is the addon's when it is in socket_linger.node (no debug info) or
// names one of native/'s sources or node-addon-api's inline header (with it).
const sources = fs.readdirSync(nativeDir).map((f) => f.replace(/[.]/g, '\\.')).concat(['napi-inl\\.h', 'napi\\.h']);
const addonFrame = new RegExp(`socket_linger\\.node|[(/](${sources.join('|')}):\\d+\\)`);
const lines = fs.readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/^==\d+== ?/, ''));
// An error (or leak record) is a paragraph: its message, then "at"/"by" frames.
const blocks = [];
let cur = [];
for (const l of lines) {
  // A message starts at column 0 (a warning may come right before it);
  // its frames and details are indented.
  if (l.trim() === '' || !/^\s/.test(l)) { if (cur.length) blocks.push(cur); cur = []; }
  if (l.trim() !== '') cur.push(l);
}
if (cur.length) blocks.push(cur);
const isError = (b) => /^(Invalid |Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|.*definitely lost in loss record)/.test(b[0]);
const inAddon = (b) => b.some((l) => /^\s+(at|by) /.test(l) && addonFrame.test(l));
const errors = blocks.filter(isError);
const ours = errors.filter(inAddon);
const summary = lines.find((l) => l.startsWith('ERROR SUMMARY')) || 'no ERROR SUMMARY';
console.log(`test-valgrind: memcheck ${summary.trim()} (whole process: node/V8 included)`);
const definite = lines.find((l) => /definitely lost:/.test(l));
if (definite) console.log(`test-valgrind: whole process ${definite.trim()}`);
console.log(`test-valgrind: errors with a frame in the addon: ${ours.length}`);
for (const b of ours) console.log(b.join('\n') + '\n');
process.exit(ours.length === 0 ? 0 : 1);
JS
verdict=$?
set -e
log "$((SECONDS - start)) s"
# The result line CI sums: the smoke run under memcheck is one test.
if [ "$rc" -ne 0 ]; then log "the smoke script failed under valgrind"; echo "0 passed, 1 failed"; exit 1; fi
if [ "$verdict" -ne 0 ]; then echo "0 passed, 1 failed"; exit 1; fi
echo "1 passed, 0 failed"
exit 0
