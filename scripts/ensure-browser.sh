#!/usr/bin/env bash
# The browser tests (tests/browser) drive Debian's Chromium through Playwright; install it when it
# is missing. Playwright's own browser download is never used (it cannot be fetched here).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "Chromium is missing and this user cannot install it: apt-get install chromium" >&2
    exit 1
  fi
  as_root=$([ "$(id -u)" -eq 0 ] || echo sudo)
  export DEBIAN_FRONTEND=noninteractive
  $as_root apt-get update -qq
  $as_root apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
"$CHROMIUM" --version
