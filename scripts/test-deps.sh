#!/usr/bin/env bash
# Install the system packages the tests need, when missing and when this user can:
# Debian's Chromium (browser tests drive it through Playwright, which never downloads
# a browser of its own), CJK fonts so page screenshots are readable, and PostGIS for
# the PostgreSQL 15 server on 127.0.0.1 (the production store tests use it).
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
# grep reads all of fc-list's output (no -q), so pipefail does not see a SIGPIPE.
fc-list : family 2>/dev/null | grep "Noto Sans CJK" >/dev/null || missing+=(fonts-noto-cjk)
if command -v pg_lsclusters >/dev/null 2>&1 && pg_lsclusters 2>/dev/null | grep -q '^15 '; then
  dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1 || missing+=(postgresql-15-postgis-3)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: cannot install ${missing[*]} (needs root and apt-get); tests that need them will fail" >&2
  exit 0
fi
echo "test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
