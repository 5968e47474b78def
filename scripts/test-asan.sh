#!/usr/bin/env bash
# npm run test:asan: the addon built with AddressSanitizer + UndefinedBehavior-
# Sanitizer (its own directory: build/ is not touched), loaded by every Node
# process of the run through SOCKET_LINGER_PREBUILD, with the ASan runtime
# preloaded (LD_PRELOAD is inherited by vitest's forked workers). Runs the
# memcheck smoke script (test/memcheck/smoke.cjs) and the default vitest suite
# (test/*.test.ts: no network faults); with --faults the fault suite too
# (root only).
#
#   bash scripts/test-asan.sh [--faults] [--json FILE] [-- VITEST_ARGS...]
#   --json FILE   also write the default suite's vitest JSON report to FILE
#   -- ...        passed to the default suite's vitest run (e.g. a file list,
#                 or -t '^(?!.*stall).*$' to leave out the loop-stall timing
#                 assertions, which the slower ASan malloc can push over)
#
# Fails on any test failure and on any sanitizer report in the output
# ("ERROR: AddressSanitizer", "runtime error:"): zero reports required.
# Leak detection is off: Node itself leaks at exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
with_faults=0
json=""
vitest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --faults) with_faults=1 ;;
    --json) json="$2"; shift ;;
    --) shift; vitest_args=("$@"); break ;;
    *) echo "test-asan: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -z "$json" ] || json="$(cd "$(dirname "$json")" && pwd)/$(basename "$json")"

start=$SECONDS
log() { echo "test-asan: $*" >&2; }

CXX="${CXX:-g++}"
libasan="$("$CXX" -print-file-name=libasan.so)"
case "$libasan" in /*) ;; *) log "no libasan.so for $CXX (apt-get install g++ / libasan8)"; exit 2 ;; esac
libasan="$(readlink -f "$libasan")"

log "building the addon with -fsanitize=address,undefined"
VARIANT="$(bash scripts/build-addon-variant.sh asan \
  "-fsanitize=address,undefined -fsanitize=float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1" \
  "-fsanitize=address,undefined")"
ADDON="$VARIANT/build/Release/socket_linger.node"
grep -q __asan_report <(nm -D "$ADDON") || { log "$ADDON is not instrumented"; exit 1; }
log "building dist/"
npx --no-install tsc -p tsconfig.build.json

OUT="$(mktemp -d "${TMPDIR:-/tmp}/socket-linger-asan.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

export SOCKET_LINGER_PREBUILD="$VARIANT"
export LD_PRELOAD="$libasan${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0:allow_user_segv_handler=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# Every process must load the instrumented addon, with the runtime preloaded.
node -e '
  require("./dist/native.js");
  const maps = require("fs").readFileSync("/proc/self/maps", "utf8");
  const addon = process.env.SOCKET_LINGER_PREBUILD + "/build/Release/socket_linger.node";
  if (!maps.includes(addon)) { console.error("test-asan: the instrumented addon was not loaded"); process.exit(1); }
  if (!/libasan/.test(maps)) { console.error("test-asan: the ASan runtime is not loaded"); process.exit(1); }
  console.error("test-asan: node loads " + addon + " with the ASan runtime");
'

status=0
run() {
  local name="$1"; shift
  local t=$SECONDS
  log "running $name"
  set +e
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  set -e
  log "$name: exit $rc, $((SECONDS - t)) s"
  [ "$rc" -eq 0 ] || status=1
}
run smoke node test/memcheck/smoke.cjs
# One file at a time: everything runs slower under ASan, and files running
# side by side on 2 cores push the loop-stall timing assertions over.
run vitest npx --no-install vitest run --no-file-parallelism --reporter=default --reporter=json --outputFile="$OUT/vitest.json" "${vitest_args[@]}"
[ -z "$json" ] || cp "$OUT/vitest.json" "$json" 2>/dev/null || true
if [ "$with_faults" -eq 1 ]; then
  run faults npx --no-install vitest run -c vitest.faults.config.ts
fi

reports="$(cat "$OUT"/*.log | grep -E 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer' || true)"
passed=0 failed=0
if [ -f "$OUT/vitest.json" ]; then
  read -r passed failed < <(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(r.numPassedTests, r.numFailedTests + (r.numRuntimeErrors || 0));' "$OUT/vitest.json")
fi
if [ -n "$reports" ]; then
  log "sanitizer reports:"
  echo "$reports" >&2
  status=1
fi
nreports=$(printf '%s' "$reports" | grep -c . || true)
log "$((SECONDS - start)) s; vitest under ASan/UBSan: $passed passed, $failed failed; sanitizer reports: $nreports"
# The result line CI sums: the smoke script counts as one test, and every
# sanitizer report line as one failure.
smoke_ok=0; grep -q '^smoke: ok' "$OUT/smoke.log" && smoke_ok=1
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || [ "$nreports" -gt 0 ] || [ "$smoke_ok" -eq 0 ] || failed=$((failed + 1))
echo "$((passed + smoke_ok)) passed, $((failed + (1 - smoke_ok) + nreports)) failed"
exit $status
