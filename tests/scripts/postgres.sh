#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: initdb and pg_ctl from Debian's postgresql-15,
# in a directory of its own under /tmp, on a free loopback port, trust authentication on
# 127.0.0.1 only, as an unprivileged user (PostgreSQL refuses to run as root: as root it runs
# as the postgres system user the package creates).
#
#   postgres.sh start STATE     starts one; STATE (a file) gets "DIR URL" and the URL is printed
#   postgres.sh restart STATE   stops it (fast) and starts it again on the same port
#   postgres.sh halt STATE      stops it at once (as a crash or a cut cable), keeping its data
#   postgres.sh resume STATE    starts a halted one again on the same port
#   postgres.sh stop STATE      stops it and removes its directory
set -euo pipefail

command="${1:-}"
state="${2:-}"
if [[ -z "$command" || -z "$state" ]]; then
  echo "usage: postgres.sh start|restart|halt|resume|stop STATE_FILE" >&2
  exit 2
fi
bin="${FRS_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
if [[ ! -x "$bin/pg_ctl" ]]; then
  echo "postgres.sh: pg_ctl not found under /usr/lib/postgresql: install postgresql-15 (scripts/setup.sh does)" >&2
  exit 1
fi

as_owner() {
  if [[ "$(id -u)" -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_again DIR URL: a stopped server, on the port its URL names.
start_again() {
  local port="${2##*:}"
  port="${port%%/*}"
  as_owner "$bin/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 -o "-p $port" start >/dev/null
}

case "$command" in
  start)
    # A server left by an interrupted run is stopped first.
    [[ -f "$state" ]] && bash "$0" stop "$state"
    dir="$(mktemp -d /tmp/frs-test-postgres.XXXXXX)"
    chmod 755 "$dir"
    [[ "$(id -u)" -eq 0 ]] && chown postgres "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U frs --auth=trust -E UTF8 --no-locale \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Durability against an OS crash is not what the tests check: fsync off saves minutes.
    # Benchmarks set FRS_TEST_POSTGRES_FSYNC=on to measure what a real server pays.
    # Enough connections for three nodes of seven stores each and the tests' own.
    fsync="${FRS_TEST_POSTGRES_FSYNC:-off}"
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = $fsync
full_page_writes = $fsync
max_connections = 300
CONF
    for attempt in $(seq 1 20); do
      port=$((20000 + RANDOM % 40000))
      if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port" start >/dev/null 2>&1; then
        url="postgresql://frs@127.0.0.1:$port/postgres"
        echo "$dir $url" >"$state"
        echo "$url"
        exit 0
      fi
      # Another process had the port: try another.
      grep -q "could not bind\|Address already in use" "$dir/server.log" 2>/dev/null || break
    done
    echo "postgres.sh: PostgreSQL did not start; its log:" >&2
    cat "$dir/server.log" >&2 || true
    exit 1
    ;;
  restart)
    read -r dir url <"$state"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    start_again "$dir" "$url"
    ;;
  halt)
    read -r dir url <"$state"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    ;;
  resume)
    read -r dir url <"$state"
    start_again "$dir" "$url"
    ;;
  stop)
    [[ -f "$state" ]] || exit 0
    read -r dir url <"$state"
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir" "$state"
    ;;
  *)
    echo "postgres.sh: unknown command '$command' (start, restart, halt, resume or stop)" >&2
    exit 2
    ;;
esac
