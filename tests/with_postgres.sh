#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster, then stop the cluster whatever happens.
#
#   tests/with_postgres.sh .venv/bin/python -m pytest -m "not browser" --store-only tests/db
#   tests/with_postgres.sh sh -c 'make demo-data DATABASE_URL=$MEDFILIP_TEST_POSTGRES_URL'
#
# The cluster lives in its own mktemp folder, listens on 127.0.0.1 at a random free port, and
# has a role with a password and a database of its own. The command gets its URL as
# MEDFILIP_TEST_POSTGRES_URL (conftest.py gives each store-backed test a fresh database there).
# As root it runs the server as the `postgres` user (initdb refuses root).
#
# With no PostgreSQL server binaries it prints one line and exits 0, unless a server is required
# (CI=true or MEDFILIP_REQUIRE_POSTGRES=1): then it fails, as a missing chromium does.
set -euo pipefail

required() { [ "${CI:-}" = "true" ] || [ "${MEDFILIP_REQUIRE_POSTGRES:-}" = "1" ]; }
give_up() {  # no server here: a skip outside CI, a failure in it
  if required; then
    echo "PostgreSQL pass FAILED: $1 (required: CI=true or MEDFILIP_REQUIRE_POSTGRES=1)" >&2
    exit 1
  fi
  echo "PostgreSQL pass skipped: $1 (install Debian's postgresql to run it)"; exit 0
}

# Debian keeps initdb/pg_ctl off PATH, in /usr/lib/postgresql/<major>/bin: take the newest.
find_bindir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; return; fi
  found=$(command -v initdb 2>/dev/null) && dirname "$(readlink -f "$found")"
}

PG_BIN=${MEDFILIP_PG_BIN:-$(find_bindir || true)}  # MEDFILIP_PG_BIN: another install's bin/
[ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/pg_ctl" ] || give_up "no initdb/pg_ctl found"

AS=()  # the server's user: ourselves, or `postgres` when we are root
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || give_up "running as root and there is no postgres user"
  AS=(runuser -u postgres --)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/medfilip-pg.XXXXXX")
DATA="$WORK/data"
cleanup() {
  local rc=$?
  if [ -f "$DATA/postmaster.pid" ]; then
    (cd / && "${AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1) || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ ${#AS[@]} -eq 0 ] || chown postgres "$WORK"

PY=$(command -v python3 || command -v python3.11)
free_port() {  # a port the kernel just handed out and released: free, barring a race
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=${MEDFILIP_PG_PORT:-$(free_port)}
PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_hex(12))')
ROLE=medfilip
DB=medfilip

t0=$(date +%s%N)
# cd /: the postgres user may not be able to read the caller's working directory.
(cd / && "${AS[@]}" "$PG_BIN/initdb" -D "$DATA" -U postgres --auth-local=trust \
   --auth-host=scram-sha-256 -E UTF8 --no-locale >"$WORK/initdb.log" 2>&1) \
  || { cat "$WORK/initdb.log" >&2; give_up "initdb failed"; }
# Durability off: the cluster is thrown away, and fsync would dominate the many CREATE DATABASEs.
OPTS="-c listen_addresses=127.0.0.1 -p $PORT -k $WORK -c fsync=off -c synchronous_commit=off"
OPTS+=" -c full_page_writes=off -c max_connections=200"
(cd / && "${AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -o "$OPTS" -w -t 60 start \
   >/dev/null) || { cat "$WORK/server.log" >&2; give_up "the server did not start"; }
"$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -U postgres -d postgres \
  -c "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'" -c "CREATE DATABASE $DB OWNER $ROLE"
export MEDFILIP_TEST_POSTGRES_URL="postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
version=$("$PG_BIN/postgres" -V | awk '{print $3}')
echo "PostgreSQL pass: throwaway PostgreSQL $version cluster on 127.0.0.1:$PORT," \
  "up in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

t1=$(date +%s)
set +e
"$@"
rc=$?
set -e
echo "PostgreSQL pass: command exited $rc after $(( $(date +%s) - t1 ))s"
exit "$rc"
