# Sourced by scripts/arm64-tools.sh and scripts/win32-tools.sh (not run):
# the .tools/ cache (gitignored), apt installs of what is missing, and npm
# packages unpacked once. Callers set TOOLS_TAG (shown in log lines) first.

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS"

log() { printf '[%s] %s\n' "${TOOLS_TAG:-tools}" "$*" >&2; }

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

# npm_unpack SPEC DIR: `npm pack SPEC` and unpack it into DIR (once).
npm_unpack() {
  local spec="$1" dir="$2" tmp
  [ -f "$dir/package.json" ] && return 0
  tmp="$(mktemp -d "$TOOLS/pack.XXXXXX")"
  log "npm pack $spec"
  # Inside an npm lifecycle (prepack under `npm pack`) the parent's npm_*
  # settings would steer this pack too: run it without them.
  local clean=() var
  for var in $(compgen -e | grep '^npm_' || true); do clean+=(-u "$var"); done
  if ! (cd "$tmp" && env "${clean[@]}" npm pack --silent "$spec" >/dev/null 2>&1); then
    rm -rf "$tmp"
    return 1
  fi
  mkdir -p "$dir"
  tar -xzf "$tmp"/*.tgz -C "$dir" --strip-components=1
  rm -rf "$tmp"
}
