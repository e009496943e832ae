#!/usr/bin/env bash
# Installs the Node Firestore emulator (@firestore-emulator/server) into a project-local npm
# prefix, so tests need neither the gcloud SDK nor Java. Idempotent: exits at once when the
# pinned version is already there. The package has no CLI; tests/support/firestore_emulator.py
# starts it with a few lines of node.
set -euo pipefail

VERSION="${FIRESTORE_EMULATOR_VERSION:-0.3.15}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${FIRESTORE_EMULATOR_PREFIX:-$ROOT/.tools/firestore-emulator}"
PKG_JSON="$PREFIX/node_modules/@firestore-emulator/server/package.json"

command -v node >/dev/null || { echo "node is required (v18+)" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is required" >&2; exit 1; }

if [[ -f "$PKG_JSON" ]] && node -e '
  const v = require(process.argv[1]).version;
  process.exit(v === process.argv[2] ? 0 : 1);' "$PKG_JSON" "$VERSION"; then
  echo "@firestore-emulator/server@$VERSION already installed in $PREFIX"
  exit 0
fi

mkdir -p "$PREFIX"
# A package.json of its own keeps npm from walking up into another project's node_modules.
[[ -f "$PREFIX/package.json" ]] || echo '{"private": true}' >"$PREFIX/package.json"
npm install --prefix "$PREFIX" --no-audit --no-fund --save-exact \
  "@firestore-emulator/server@$VERSION"
echo "installed @firestore-emulator/server@$VERSION in $PREFIX"
