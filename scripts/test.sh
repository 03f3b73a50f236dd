#!/usr/bin/env bash
# Install what the tests need, then run every quality gate and the whole test suite.
#
#   scripts/test.sh                 lint, format check, type check, layer contracts, all test tiers
#   scripts/test.sh -m unit         one tier (unit | functional | integration | e2e | vm)
#   scripts/test.sh tests/unit -k x any pytest arguments
#
# Needs root for the functional, integration and e2e tiers (namespaces, real daemons).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh test

# The whole suite's vm tier needs the appliance image (about 3 minutes when not cached): build it
# meanwhile, while the gates and the other tiers run (the vm fixture's own build-image.sh waits
# for this one, then finds the image). Waited for at exit, whatever happens.
image_build_pid=
if [ $# -eq 0 ]; then
    image_log=${TMPDIR:-/tmp}/astara-image-build.$$.log
    echo "==> building the appliance image in the background (log: $image_log)"
    scripts/build-image.sh > "$image_log" 2>&1 &
    image_build_pid=$!
fi
trap '[ -z "$image_build_pid" ] || wait "$image_build_pid" 2>/dev/null || true' EXIT

echo "==> ruff (lint)";         .venv/bin/ruff check .
echo "==> ruff (format)";       .venv/bin/ruff format --check .
echo "==> mypy";                .venv/bin/mypy
echo "==> import-linter (layers)"; .venv/bin/lint-imports
echo "==> pytest"
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
    echo "pytest collected no tests: that is a failure here" >&2
    exit 1
fi
exit $rc
