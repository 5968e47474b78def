#!/usr/bin/env bash
# Cross-builds the addon for Windows x64 with mingw-w64, into
#   prebuilds/win32-x64/socket-linger.node
# the file `prebuildify --napi` (6.x) would make on Windows and node-gyp-build
# picks on win32-x64. Installs what it needs if missing (see win32-tools.sh).
#
# The posix flavour of mingw's g++ (node-addon-api needs std::mutex), linked
# -static: the .node needs no mingw DLL (libstdc++, libgcc, winpthread) at run
# time, only system DLLs and the host's exports.
#
# Linking: against a *delay-load* import library for node.exe, with a hook
# (native/win32_delay_load_mingw.cc) that binds every Node-API and libuv entry
# point to the running executable (GetModuleHandle(NULL)), as node-gyp's
# win_delay_load_hook does for MSVC builds: never a hard link to node.exe.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/win32-tools.sh"

ensure_build_tools
ensure_headers
[ -d "$ROOT/node_modules/node-addon-api" ] || (cd "$ROOT" && npm install --ignore-scripts >&2)
ADDON_API="$(cd "$ROOT" && node -p "require('node-addon-api').include_dir")"

OBJ="$TOOLS/win32-build"
mkdir -p "$OBJ" "$ROOT/prebuilds/win32-x64"

# The entry points the addon takes from the host: all of Node-API (node_api.def
# has no trailing newline) plus the few libuv functions the socket lookup uses.
{
  cat "$NAPI_DIR/def/node_api.def"
  echo
  printf '%s\n' uv_walk uv_fileno uv_handle_get_type uv_is_closing uv_translate_sys_error
} > "$OBJ/node_host.def"
x86_64-w64-mingw32-dlltool -d "$OBJ/node_host.def" -D node.exe -y "$OBJ/libnode_delay.a"

OUT="$ROOT/prebuilds/win32-x64/socket-linger.node"
log "x86_64-w64-mingw32-g++-posix -> ${OUT#$ROOT/}"
x86_64-w64-mingw32-g++-posix -O2 -shared -std=c++17 -Wall -Wextra \
  -DBUILDING_NODE_EXTENSION -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS \
  -DNODE_ADDON_API_DISABLE_DEPRECATED -D_WIN32_WINNT=0x0601 \
  -I "$ADDON_API" -I "$NAPI_DIR/include" -I "$UV_INCLUDE" \
  -o "$OUT" \
  "$ROOT/native/addon.cc" \
  "$ROOT/native/socket_ops_win32.cc" \
  "$ROOT/native/socket_lookup_win32.cc" \
  "$ROOT/native/wakeups_none.cc" \
  "$ROOT/native/win32_delay_load_mingw.cc" \
  "$OBJ/libnode_delay.a" -lws2_32 -liphlpapi \
  -static -Wl,--no-insert-timestamp
x86_64-w64-mingw32-strip --strip-unneeded "$OUT"
echo "$OUT"
