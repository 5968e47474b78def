#!/usr/bin/env bash
# Breaks the linger timer in a BUILT copy of the library, in place: the
# deadline timer of settleOnce() in close.js (closeSocket's linger n,
# gracefulShutdown's timeout) is made to never fire. Used to prove the fault
# suite can fail (scripts/prove-faults-fail.sh does it in a throw-away copy).
#
#   bash scripts/break-linger-timer.sh [DIST_DIR]     # default: dist/
#
# If you run it on the real dist/, rebuild afterwards: `npm run build:ts`
# (dist/ is not committed, but other test runs on this machine use it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIST="${1:-$ROOT/dist}"
FILE="$DIST/close.js"
[ -f "$FILE" ] || { echo "break-linger-timer: no $FILE (build it first)" >&2; exit 2; }
node - "$FILE" <<'JS'
const fs = require('fs');
const file = process.argv[2];
const src = fs.readFileSync(file, 'utf8');
// const timer = setTimeout(() => abortively(true), timeoutMs);
const pattern = /setTimeout\(\(\) => abortively\(true\), (\w+)\)/;
if (!pattern.test(src)) {
  console.error(`break-linger-timer: the linger timer was not found in ${file}; update the pattern`);
  process.exit(2);
}
fs.writeFileSync(file, src.replace(pattern, 'setTimeout(() => { /* broken: scripts/break-linger-timer.sh */ }, $1)'));
console.log(`break-linger-timer: ${file}: the linger/shutdown deadline timer never fires now`);
JS
