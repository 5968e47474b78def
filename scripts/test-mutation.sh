#!/usr/bin/env bash
# npm run test:mutation: Stryker over src/ (stryker.config.mjs). Stryker is
# fetched once into .tools/ (gitignored), not a devDependency: only this check
# needs it. Its vitest runner and TypeScript checker use the project's own
# vitest and typescript (no peer copies are installed next to it).
# Arguments go to `stryker run`, e.g. --mutate src/linger.ts, --concurrency 1.
# Reports: reports/mutation/index.html, mutation.json; the per-file table
# (scripts/mutation-summary.mjs; --survivors lists what survived) is printed
# at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS_TAG=mutation
source scripts/tools-common.sh

STRYKER_VERSION=9.6.1   # 10.x needs Node >= 22; the package supports 18.17+ and CI runs 20
STRYKER_DIR="$TOOLS/stryker-$STRYKER_VERSION"
if [ ! -x "$STRYKER_DIR/node_modules/.bin/stryker" ]; then
  log "installing Stryker $STRYKER_VERSION into ${STRYKER_DIR#$ROOT/}"
  mkdir -p "$STRYKER_DIR"
  echo '{ "private": true }' > "$STRYKER_DIR/package.json"
  (cd "$STRYKER_DIR" && npm install --silent --no-audit --no-fund --no-save --legacy-peer-deps --ignore-scripts \
    "@stryker-mutator/core@$STRYKER_VERSION" \
    "@stryker-mutator/vitest-runner@$STRYKER_VERSION" \
    "@stryker-mutator/typescript-checker@$STRYKER_VERSION") >&2
fi

# The run's Node: 24 by default, from the npm package node-linux-<arch>@24
# unpacked once into .tools/ (as test:node does), so that the tests of
# process.execve (Node >= 22.15; they skip under Node 20) reach the guard's
# execve path too. The addon is Node-API: the one build serves it.
# MUTATION_NODE=system keeps the Node on PATH; MUTATION_NODE=26, another major.
MUTATION_NODE="${MUTATION_NODE:-24}"
if [ "$MUTATION_NODE" != system ]; then
  node_dir="$TOOLS/node-linux-$(node -p process.arch)-$MUTATION_NODE"
  npm_unpack "node-linux-$(node -p process.arch)@$MUTATION_NODE" "$node_dir" \
    || { log "could not fetch node-linux-$(node -p process.arch)@$MUTATION_NODE"; exit 1; }
  export PATH="$node_dir/bin:$PATH"
fi
log "Stryker runs under Node $(node --version)"

# The sandboxes copy build/: the addon must exist (npm install builds it).
[ -f build/Release/socket_linger.node ] || npx --no-install node-gyp rebuild >&2
# The checker type-checks every mutant against the tests; they must compile.
npx --no-install tsc -p tsconfig.build.json
npx --no-install tsc -p tsconfig.json --noEmit

start=$(date +%s)
nice -n "${MUTATION_NICE:-10}" "$STRYKER_DIR/node_modules/.bin/stryker" run stryker.config.mjs "$@"
log "took $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"
node scripts/mutation-summary.mjs "${MUTATION_REPORTS:-reports}/mutation/mutation.json"
