#!/usr/bin/env bash
# The browser tests (tests/browser) drive Debian's Chromium through Playwright; install it when it
# is missing. Playwright's own browser download is never used (it cannot be fetched here).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

"$(dirname "$0")/apt-install-missing.sh" "$CHROMIUM" chromium fonts-dejavu-core
"$CHROMIUM" --version
