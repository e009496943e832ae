#!/usr/bin/env bash
# Sets up the machine and runs the whole test suite, integration tests included (they start
# their own Prefect server, Firestore emulator, fake cloud APIs and omicsflow serve processes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
# Tests must not talk to an operator's Prefect server.
unset PREFECT_API_URL PREFECT_API_KEY
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest's 5 means "no tests ran": for us that is a failure, never a pass.
if [[ $rc -eq 5 ]]; then echo "no tests were collected" >&2; exit 1; fi
exit $rc
