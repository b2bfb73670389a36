#!/usr/bin/env bash
# Adds bookworm-backports to apt's sources (for golang-1.23-go) from the Debian mirror this machine
# already uses: the URI is read from apt's own bookworm entry, never written here, so the project
# names no package-registry host. A no-op when backports is configured.
set -euo pipefail
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] && sources+=("$f")
done
[ "${#sources[@]}" -gt 0 ] || { echo "apt-backports: apt has no sources" >&2; exit 1; }
if grep -qs 'bookworm-backports' "${sources[@]}"; then exit 0; fi
# deb822 (.sources): the URIs line of the stanza whose Suites name plain "bookworm";
# one-line (.list): "deb URI bookworm main".
uri=$(awk '
  /^[[:space:]]*$/ { if (u != "" && s ~ /(^|[[:space:]])bookworm([[:space:]]|$)/) { print u; done = 1; exit } u = ""; s = "" }
  /^URIs:/   { u = $2 }
  /^Suites:/ { $1 = ""; s = $0 }
  /^deb[[:space:]]/ && $3 == "bookworm" { print $2; done = 1; exit }
  END { if (!done && u != "" && s ~ /(^|[[:space:]])bookworm([[:space:]]|$)/) print u }
' "${sources[@]}" 2>/dev/null | head -n1)
if [ -z "$uri" ]; then
  echo "apt-backports: no Debian bookworm entry in apt's sources to derive bookworm-backports from" >&2
  exit 1
fi
printf '%s\n' 'Types: deb' "URIs: $uri" 'Suites: bookworm-backports' 'Components: main' \
  'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' > /etc/apt/sources.list.d/bookworm-backports.sources
echo "apt-backports: added bookworm-backports from $uri" >&2
