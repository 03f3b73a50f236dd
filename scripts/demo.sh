#!/usr/bin/env bash
# The all-in-one local cloud: install everything, bring it up, create the demo router.
#
#   sudo scripts/demo.sh                      install + up + demo router
#   sudo scripts/demo.sh status               what runs (processes, namespaces, appliances, VMs)
#   sudo scripts/demo.sh vm create --network demo-net --name web
#   sudo scripts/demo.sh vm exec web -- ping -c1 203.0.113.10
#   sudo scripts/demo.sh vm delete web
#   sudo scripts/demo.sh down [--keep-state]  stop everything, remove namespaces and state
#
# Layout, addresses, state and logs: docs/local-cloud.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmd=${1:-up}
shift || true
exec .venv/bin/astara-local "$cmd" "$@"
