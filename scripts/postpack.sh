#!/usr/bin/env bash
# npm's postpack (npm pack, npm publish): puts back the checkout's
# package.json that scripts/prepack.sh trimmed for the tarball.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ ! -f package.json.orig ] || mv package.json.orig package.json
