#!/usr/bin/env bash
# npm run test:faults: builds dist/, runs the fault suite (vitest.faults.config.ts,
# test/faults/: a peer process in its own network namespace, nftables faults),
# and afterwards removes every namespace the suite left behind, even when
# vitest itself died (its globalSetup teardown then never runs). Arguments go
# to vitest. Needs root.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Namespaces are named slf-<pid of the test process>-<n>: remove those whose
# process is gone (with anything still running inside them).
cleanup() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^slf-[0-9]+-[0-9]+$'); do
    pid="${ns#slf-}"; pid="${pid%-*}"
    kill -0 "$pid" 2>/dev/null && continue
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null && echo "test-faults: removed namespace $ns" >&2
  done
}
trap cleanup EXIT

npx --no-install tsc -p tsconfig.build.json || exit 1
npx --no-install vitest run -c vitest.faults.config.ts "$@"
