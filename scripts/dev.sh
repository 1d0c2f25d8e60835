#!/usr/bin/env bash
# README command 1: set everything up and run Boxoffice (API + workers +
# scheduler in one process) against local PostgreSQL and Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh
command -v cargo >/dev/null || { echo "error: install Rust first: https://rustup.rs" >&2; exit 1; }
# Demo accounts and events to browse (idempotent; migrates first).
cargo run --release --bin boxoffice -- seed
exec cargo run --release --bin boxoffice -- dev
