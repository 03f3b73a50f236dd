#!/usr/bin/env bash
# The all-in-one local cloud: install everything, bring it up, create the demo router.
#
#   sudo scripts/demo.sh          install + up + demo
#   sudo scripts/demo.sh status   what runs
#   sudo scripts/demo.sh down     stop everything, remove the state
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmd=${1:-up}
shift || true
exec .venv/bin/astara-local "$cmd" "$@"
