#!/usr/bin/env bash
# The clock-skew fault test (tests/faults/test_clock_skew.py) preloads Debian's libfaketime into
# a worker; install it when it is missing.
set -euo pipefail

"$(dirname "$0")/apt-install-missing.sh" /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 faketime
