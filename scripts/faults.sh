#!/usr/bin/env bash
# The fault suite (RELIABILITY.md): a drop of a few hundred orders on real
# processes (api, two workers, scheduler, sandbox) over a PostgreSQL and a
# Redis of its own (own ports and data folders, started here), struck by one
# fault per scenario; the end state is checked and the recovery timed.
#
#   ./scripts/faults.sh            every scenario, release build, report in bench/results;
#                                  then ./scripts/fuzz.sh (every check, 600 s)
#   ./scripts/faults.sh --short    the CI version: five scenarios, smaller drop, debug build
#   ./scripts/faults.sh --scenarios redis-outage --buyers 600   (boxoffice-bench faults --help)
set -euo pipefail
cd "$(dirname "$0")/.."
# PostgreSQL's server programs and redis-server, from the OS packages.
./scripts/services.sh
if [ -n "${CI:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boxoffice-target}"
fi
profile=(--release)
args=()
if [ "${1:-}" = "--short" ]; then
  shift
  profile=()
  args=(--scenarios kill-all-workers,redis-outage,postgres-restart,smtp-outage,provider-faults --buyers 150 --seats 150
        --out "${TMPDIR:-/tmp}/boxoffice-faults-report")
fi
cargo build "${profile[@]}" -p boxoffice -p boxoffice-bench
cargo run -q "${profile[@]}" -p boxoffice-bench -- faults "${args[@]}" "$@"
# The whole suite also fuzzes the API for ten minutes, every check.
if [ ${#args[@]} -eq 0 ] && [ $# -eq 0 ]; then
  ./scripts/fuzz.sh
fi
