#!/usr/bin/env bash
# Proves the fault suite can fail: builds the current src/ into a throw-away
# copy, breaks the linger timer there (scripts/break-linger-timer.sh), runs
# test/faults against it and expects the deadline tests to FAIL.
# Nothing in the working tree (dist/, build/) is touched.
#
#   bash scripts/prove-faults-fail.sh
#
# Exit 0: the suite failed on the broken build as it must (the failing tests
# are listed). Exit 1: the suite passed on a broken build (the tests prove
# nothing). Needs root, like the fault suite itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ADDON="$ROOT/build/Release/socket_linger.node"
[ -f "$ADDON" ] || (cd "$ROOT" && npx --no-install node-gyp rebuild >&2)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/socket-linger-broken.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

cp "$ROOT/package.json" "$ROOT/vitest.faults.config.ts" "$WORK/"
mkdir -p "$WORK/test" "$WORK/build/Release"
cp -r "$ROOT/test/faults" "$ROOT/test/helpers.ts" "$ROOT/test/fixtures" "$WORK/test/"
cp "$ADDON" "$WORK/build/Release/"
ln -s "$ROOT/node_modules" "$WORK/node_modules"
(cd "$ROOT" && npx --no-install tsc -p tsconfig.build.json --outDir "$WORK/dist")

bash "$ROOT/scripts/break-linger-timer.sh" "$WORK/dist"

echo "prove-faults-fail: running the fault suite against the broken build (expected to fail)"
status=0
(cd "$WORK" && npx --no-install vitest run -c vitest.faults.config.ts \
  --reporter=default --reporter=json --outputFile="$WORK/result.json") || status=$?

node - "$WORK/result.json" "$status" <<'JS'
const fs = require('fs');
const [file, status] = process.argv.slice(2);
let r;
try { r = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (e) {
  console.error(`prove-faults-fail: no results (${e.message}); vitest exit ${status}`);
  process.exit(1);
}
const failed = r.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status === 'failed'));
console.log(`\nprove-faults-fail: on the broken build ${r.numPassedTests} passed, ${r.numFailedTests} failed:`);
for (const a of failed) console.log(`  FAILED (as it must): ${a.fullName}\n    ${(a.failureMessages[0] || '').split('\n')[0]}`);
// Every test that expects an RST at a deadline depends on the timer.
const deadline = r.testResults.flatMap((f) => f.assertionResults.filter((a) => /RST at \d/.test(a.fullName)));
const missed = deadline.filter((a) => a.status !== 'failed');
for (const a of missed) console.error(`  PASSED on the broken build (should not): ${a.fullName}`);
if (Number(status) === 0 || failed.length === 0 || missed.length > 0) {
  console.error('prove-faults-fail: the fault suite PASSED with a linger timer that never fires: it proves nothing');
  process.exit(1);
}
console.log('prove-faults-fail: ok, the fault suite catches a linger timer that never fires');
JS
