#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are running.
# Uses running ones; otherwise starts installed ones; otherwise installs them
# from the OS packages (Debian/Ubuntu) and starts them. Elsewhere it says what
# to do. Safe to run again and again.
set -euo pipefail

PGPORT="${PGPORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
STATE_DIR="${BOXOFFICE_STATE_DIR:-$HOME/.local/share/boxoffice}"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  return 1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $* (install sudo, or run it as root)"; fi
}

apt_install() {
  command -v apt-get >/dev/null || return 1
  say "installing $* from the OS packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
}

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$dir" ] && echo "$dir" || dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)"
}

start_postgres() {
  if port_open "$PGPORT"; then return 0; fi
  if ! command -v pg_ctlcluster >/dev/null && [ ! -x "$(pg_bin)/pg_ctl" ]; then
    apt_install postgresql || die "PostgreSQL is not running on 127.0.0.1:$PGPORT and cannot be installed here.
Install and start PostgreSQL (macOS: brew install postgresql@16 && brew services start postgresql@16),
or run: docker compose -f compose.test.yaml up -d"
  fi
  if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null; then
    # The packaged cluster runs as the postgres user.
    local version
    version=$(ls /etc/postgresql | sort -V | tail -1)
    say "starting PostgreSQL $version (cluster main)"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_port "$PGPORT" || die "PostgreSQL did not come up on port $PGPORT"
    # Tests and dev connect as postgres without a password over TCP.
    local hba
    hba=$(su postgres -c "psql -tAc 'SHOW hba_file'")
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
      su postgres -c "psql -qc 'SELECT pg_reload_conf()'" >/dev/null
    fi
  else
    # Not root: a private cluster owned by the current user, trust auth on localhost.
    local data="$STATE_DIR/postgres"
    if [ ! -f "$data/PG_VERSION" ]; then
      say "creating a private PostgreSQL cluster in $data"
      mkdir -p "$data"
      "$(pg_bin)/initdb" -D "$data" -U postgres --auth=trust >/dev/null
    fi
    say "starting PostgreSQL from $data"
    "$(pg_bin)/pg_ctl" -D "$data" -l "$data/server.log" -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1" -w start >/dev/null
  fi
  wait_port "$PGPORT" || die "PostgreSQL did not come up on port $PGPORT"
}

start_redis() {
  if port_open "$REDIS_PORT"; then return 0; fi
  if ! command -v redis-server >/dev/null; then
    apt_install redis-server || die "Redis is not running on 127.0.0.1:$REDIS_PORT and cannot be installed here.
Install and start Redis (macOS: brew install redis && brew services start redis),
or run: docker compose -f compose.test.yaml up -d"
  fi
  say "starting Redis on port $REDIS_PORT"
  mkdir -p "$STATE_DIR"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$STATE_DIR" --logfile "$STATE_DIR/redis.log"
  wait_port "$REDIS_PORT" || die "Redis did not come up on port $REDIS_PORT"
}

# `services.sh --browser`: the web app's tests drive Chromium through
# ChromeDriver (the W3C WebDriver protocol).
install_chromium() {
  local browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
  local driver=${CHROMEDRIVER:-$(command -v chromedriver || true)}
  if [ -n "$browser" ] && [ -x "$browser" ] && [ -n "$driver" ] && [ -x "$driver" ]; then return 0; fi
  apt_install chromium chromium-driver || die "Chromium and ChromeDriver are not installed and cannot be installed here.
Install both (of one version) and set CHROMIUM=/path/to/chromium and CHROMEDRIVER=/path/to/chromedriver."
}

# `services.sh --python`: the API fuzzer (scripts/fuzz.sh) runs from a
# virtual environment of Python 3.
install_python() {
  if command -v python3 >/dev/null && python3 -c 'import ensurepip, venv' 2>/dev/null; then return 0; fi
  apt_install python3 python3-venv || die "Python 3 with its venv module is not installed and cannot be installed here."
}

start_postgres
start_redis
say "PostgreSQL on 127.0.0.1:$PGPORT and Redis on 127.0.0.1:$REDIS_PORT are up"
case "${1:-}" in
  --browser)
    install_chromium
    say "Chromium is installed" ;;
  --python)
    install_python ;;
esac
