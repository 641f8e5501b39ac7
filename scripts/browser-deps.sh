#!/usr/bin/env bash
# Install Debian's Chromium (and CJK fonts for readable screenshots) for the browser
# tests, unless they are already there. Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own. Needs root (apt-get).
set -euo pipefail

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# grep reads all of fc-list's output (no -q), so pipefail does not see a SIGPIPE.
fc-list : family 2>/dev/null | grep "Noto Sans CJK" >/dev/null || missing+=(fonts-noto-cjk)

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "browser-deps: chromium and CJK fonts already installed"
    exit 0
fi

echo "browser-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
