#!/usr/bin/env bash
# The benchmarks (not part of the test suite): machine baseline (pgbench,
# redis-benchmark), queue throughput with 1/2/4 worker processes, and the hot
# ticket drop against a fresh `boxoffice dev`. Release builds; results as a
# table on stdout and JSON in bench/results/. Arguments go to
# `boxoffice-bench all` (e.g. --buyers 5000 --runs 1).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh
for tool in pgbench redis-benchmark psql; do
  command -v "$tool" >/dev/null || { echo "error: $tool is needed (postgresql-client/contrib, redis-tools)" >&2; exit 1; }
done
cargo build --release -p boxoffice -p boxoffice-bench
target_dir="${CARGO_TARGET_DIR:-target}"
unset APP_ENV SMTP_URL REDIS_NAMESPACE
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/boxoffice_bench}"
exec "$target_dir/release/boxoffice-bench" all "$@"
