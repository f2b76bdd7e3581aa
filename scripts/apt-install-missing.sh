#!/usr/bin/env bash
# apt-install-missing.sh FILE PACKAGE...: install the Debian packages when FILE is missing (as
# root, or through sudo). The test tools the suite needs beyond Python come this way.
set -euo pipefail

file=$1
shift
if [ ! -e "$file" ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "$file is missing and this user cannot install it: apt-get install $*" >&2
    exit 1
  fi
  as_root=$([ "$(id -u)" -eq 0 ] || echo sudo)
  export DEBIAN_FRONTEND=noninteractive
  $as_root apt-get update -qq
  $as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
fi
