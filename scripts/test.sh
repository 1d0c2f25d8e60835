#!/usr/bin/env bash
# README command 2: set everything up and run the whole test suite against real
# PostgreSQL, Redis, an embedded SMTP server and, for the web app, Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh --browser
command -v cargo >/dev/null || { echo "error: install Rust first: https://rustup.rs" >&2; exit 1; }
if [ -n "${CI:-}" ]; then
  # Builds outlive the fresh clone CI runs in.
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boxoffice-target}"
fi
# Tests make their own databases and Redis namespaces; these only say where
# the servers are.
export TEST_DATABASE_SERVER="${TEST_DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}"
unset DATABASE_URL REDIS_URL SMTP_URL APP_ENV
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  # nextest does not run doctests.
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast "$@"
fi
