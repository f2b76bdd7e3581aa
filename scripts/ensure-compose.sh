#!/usr/bin/env bash
# The compose test (tests/deploy/test_compose.py) asks a compose client to read docker-compose.yml
# as `docker compose` would; Debian's docker-compose (v1) has `config` and needs no Docker engine.
set -euo pipefail

command -v docker-compose >/dev/null || "$(dirname "$0")/apt-install-missing.sh" /usr/bin/docker-compose docker-compose
