#!/usr/bin/env bash
# Sets up the machine, then runs `omicsflow serve --demo`: an embedded Prefect server with its
# UI (http://127.0.0.1:4200 unless OMICSFLOW_PREFECT_PORT says otherwise), the SQLite ledger,
# the local report store and the example pipelines. Ctrl-C stops everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
unset PREFECT_API_URL
exec .venv/bin/omicsflow serve --demo "$@"
