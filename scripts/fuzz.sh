#!/usr/bin/env bash
# Property-based fuzzing of the whole HTTP API from its own /openapi.json
# (schemathesis from PyPI, pinned; RELIABILITY.md). Runs `boxoffice dev` on a
# database and Redis namespace of its own, signed in as the demo organizer.
#
#   ./scripts/fuzz.sh           every check, 600 s
#   ./scripts/fuzz.sh --short   CI: what must always hold (no 5xx, every error
#                               problem+json with a code, a rejected request
#                               wrote nothing), 150 s
#   ./scripts/fuzz.sh --max-time 600 --include-path-regex '^/v1/events'   (more `st run` options)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh --python
if [ -n "${CI:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boxoffice-target}"
fi
version=4.32.5
venv="${XDG_CACHE_HOME:-$HOME/.cache}/boxoffice-fuzz"
if ! "$venv/bin/st" --version 2>/dev/null | grep -qF "$version"; then
  echo "==> installing schemathesis $version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$version"
fi
# Schemathesis's own "schema-valid request rejected" cannot know the rules
# no schema states; checks.py's `valid_requests_accepted` stands in for it.
checks=(--checks all --exclude-checks positive_data_acceptance)
budget=(--max-time 600)
if [ "${1:-}" = "--short" ]; then
  shift
  checks=(--checks not_a_server_error,errors_are_problem_json,rejected_requests_write_nothing)
  budget=(--max-time 150)
fi

# BOXOFFICE_BIN: a binary already built (otherwise the debug build).
bin="${BOXOFFICE_BIN:-}"
if [ -z "$bin" ]; then
  cargo build -q --bin boxoffice
  bin="${CARGO_TARGET_DIR:-target}/debug/boxoffice"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
log="${TMPDIR:-/tmp}/boxoffice-fuzz-$port.log"
export DATABASE_URL="${FUZZ_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/boxoffice_fuzz}"
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379}" REDIS_NAMESPACE="fuzz-$port"
export HTTP_ADDR="127.0.0.1:$port" PUBLIC_URL="$url" IP_RATE_LIMIT=0 USER_RATE_LIMIT=0
unset SMTP_URL APP_ENV
export EMAIL_OUTBOX_DIR="${TMPDIR:-/tmp}/boxoffice-fuzz-outbox"
"$bin" seed >/dev/null
# The API's writes are logged (scripts/fuzz/writes.sql) for the check that a
# rejected request wrote nothing.
psql -XAtq -v ON_ERROR_STOP=1 -d "$DATABASE_URL" -f scripts/fuzz/writes.sql
export FUZZ_WRITES_DSN="$DATABASE_URL"
"$bin" dev >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$url/readyz" >/dev/null 2>&1 && break
  sleep 0.3
done
token=$(curl -fsS "$url/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"organizer@boxoffice.localhost","password":"demo-violet-otter-42"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

# Operations that end the session the run signs in with are left out. One
# request at a time: the write log cannot tell two requests' writes apart.
status=0
SCHEMATHESIS_HOOKS=checks PYTHONPATH=scripts/fuzz "$venv/bin/st" run "$url/openapi.json" \
  "${checks[@]}" "${budget[@]}" \
  --header "Authorization: Bearer $token" \
  --exclude-path /v1/auth/logout --exclude-path-regex '^/v1/auth/sessions' \
  --exclude-path /v1/auth/reset-password \
  --request-timeout 35 --workers 1 --no-color "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "fuzz: failures above; the server's log is $log" >&2
fi
exit "$status"
