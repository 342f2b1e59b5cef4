#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the distributed tests.
#
#   bash -c "source .ci/postgres.sh && python -m pytest tests/study/test_distributed.py; kws_postgres_stop"
#   (kws_postgres_stop stops the server and removes its data folder)
#
# Installs Debian's postgresql package when its binaries are missing, creates a cluster in a
# temporary folder (run as the unprivileged `postgres` user when this is root, as initdb
# requires), a user and a database with a password, and exports
# KWS_TEST_POSTGRES_URL=postgresql+psycopg://kws:kws@127.0.0.1:PORT/kws_test.
# Any failure stops the caller (set -e, when sourced as a command of its own, as .ci/run
# does): a server that cannot start fails CI, it is never skipped.
set -euo pipefail

# A free port unless one is given: a server left over from an earlier run must not be reused.
KWS_PG_PORT="${KWS_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
KWS_PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
KWS_PG_DIR="$(mktemp -d /tmp/kws-postgres.XXXXXX)"
KWS_PG_RUN=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$KWS_PG_DIR"
    KWS_PG_RUN=(runuser -u postgres --)
fi
echo kws > "$KWS_PG_DIR/password"
"${KWS_PG_RUN[@]}" "$KWS_PG_BIN/initdb" -D "$KWS_PG_DIR/data" -U kws --pwfile="$KWS_PG_DIR/password" \
    --auth=scram-sha-256 >"$KWS_PG_DIR/initdb.log"
"${KWS_PG_RUN[@]}" "$KWS_PG_BIN/pg_ctl" -D "$KWS_PG_DIR/data" -l "$KWS_PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $KWS_PG_PORT -k $KWS_PG_DIR -c max_connections=200" start >/dev/null
PGPASSWORD=kws "$KWS_PG_BIN/createdb" -h 127.0.0.1 -p "$KWS_PG_PORT" -U kws kws_test
export KWS_TEST_POSTGRES_URL="postgresql+psycopg://kws:kws@127.0.0.1:$KWS_PG_PORT/kws_test"
echo "PostgreSQL $("$KWS_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$KWS_PG_PORT"

kws_postgres_stop() {
    "${KWS_PG_RUN[@]}" "$KWS_PG_BIN/pg_ctl" -D "$KWS_PG_DIR/data" -m fast -w stop >/dev/null || true
    rm -rf "$KWS_PG_DIR"
}
