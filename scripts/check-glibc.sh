#!/usr/bin/env bash
# scripts/check-glibc.sh FILE.node [MAX_GLIBC]: fails when a Linux prebuild
# needs a glibc newer than MAX_GLIBC (default 2.28) or any GLIBCXX/CXXABI
# version (libstdc++ is linked statically). Prints the versions it needs.
set -euo pipefail
file=$1 max=${2:-2.28}
OBJDUMP=${OBJDUMP:-objdump}
command -v "$OBJDUMP" >/dev/null 2>&1 || OBJDUMP=objdump
syms=$("$OBJDUMP" -T "$file")
versions=$(grep -oE '\((GLIBC|GLIBCXX|CXXABI|GCC)_[0-9.]+\)' <<<"$syms" | tr -d '()' | sort -uV || true)
newest=$(grep -E '^GLIBC_' <<<"$versions" | sed 's/^GLIBC_//' | sort -V | tail -1)
needed=$("$OBJDUMP" -p "$file" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
echo "$file: needs ${needed}; versions: $(tr '\n' ' ' <<<"$versions")" >&2
status=0
if grep -qE '^(GLIBCXX|CXXABI)_' <<<"$versions"; then
  echo "  FAIL: needs libstdc++ symbol versions (should be linked statically)" >&2; status=1
fi
if [ -n "$newest" ] && [ "$(printf '%s\n%s\n' "$newest" "$max" | sort -V | tail -1)" != "$max" ]; then
  echo "  FAIL: needs GLIBC_$newest > $max:" >&2
  grep -E "\(GLIBC_" <<<"$syms" | awk -v max="$max" '{print "   ", $0}' | while read -r line; do
    v=$(grep -oE 'GLIBC_[0-9.]+' <<<"$line" | sed 's/GLIBC_//')
    [ "$(printf '%s\n%s\n' "$v" "$max" | sort -V | tail -1)" = "$max" ] || echo "    $line" >&2
  done
  status=1
fi
[ $status -eq 0 ] && echo "  ok: newest glibc symbol version GLIBC_${newest:-none} <= $max" >&2
exit $status
