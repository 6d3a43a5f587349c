#!/usr/bin/env bash
# Start (start) or stop (stop) a throw-away PostgreSQL server on loopback for the tests; prints its URL on start.
set -euo pipefail
DATA=/tmp/rp_eval_pg
PORT=${RP_EVAL_PG_PORT:-54329}
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
case "$1" in
  start)
    rm -rf "$DATA" && mkdir -p "$DATA" && chown postgres "$DATA"
    su postgres -c "$BIN/initdb -D $DATA -A trust -U postgres" >/dev/null
    su postgres -c "$BIN/pg_ctl -D $DATA -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1' -l $DATA/log -w start" >/dev/null
    su postgres -c "$BIN/createdb -h 127.0.0.1 -p $PORT -U postgres rp_eval_test"
    echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/rp_eval_test"
    ;;
  stop)
    su postgres -c "$BIN/pg_ctl -D $DATA -m fast -w stop" >/dev/null || true
    rm -rf "$DATA"
    ;;
esac
