#!/bin/bash
# postgres-debian's entrypoint: a cluster in /var/lib/postgresql/data on first start, TLS from
# CERT_PATH/DOMAIN when the files are there, the log level from LOG_LEVEL, then postgres.
# `check` prints the settings it would use.
set -euo pipefail
: "${DOMAIN:?}" "${CERT_PATH:?}" "${LOG_LEVEL:=info}"
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/data
opts=(-c "log_min_messages=${LOG_LEVEL/info/info}" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql)
if [ -r "$CERT_PATH/live/$DOMAIN/fullchain.pem" ]; then
  opts+=(-c ssl=on -c "ssl_cert_file=$CERT_PATH/live/$DOMAIN/fullchain.pem" -c "ssl_key_file=$CERT_PATH/live/$DOMAIN/privkey.pem")
fi
if [ "${1:-}" = check ]; then echo "postgres ${opts[*]}"; exec "$bin/postgres" --version; fi
[ -s "$data/PG_VERSION" ] || "$bin/initdb" -D "$data" --auth=scram-sha-256 --pwfile=<(echo "${POSTGRES_PASSWORD:?}")
exec "$bin/postgres" -D "$data" "${opts[@]}"
