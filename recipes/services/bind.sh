#!/bin/bash
# bind-debian's entrypoint: named.conf from DOMAIN and LOG_LEVEL, then named in the
# foreground as bind. `check` renders and checks the configuration only.
set -euo pipefail
: "${DOMAIN:?}" "${LOG_LEVEL:=info}"
cat > /run/named/named.conf <<CONF
options { directory "/var/cache/bind"; listen-on port 5353 { any; }; pid-file "/run/named/named.pid"; };
logging { channel out { stderr; severity ${LOG_LEVEL}; }; category default { out; }; };
zone "${DOMAIN}" { type primary; file "/run/named/zone.db"; };
CONF
sed "s/@DOMAIN@/${DOMAIN}/g" /etc/bind/zone.template > /run/named/zone.db
cp /run/named/zone.db /run/named/zone.check
if [ "${1:-}" = check ]; then
  /usr/bin/named-checkconf /run/named/named.conf
  exec /usr/bin/named-checkzone "${DOMAIN}" /run/named/zone.db
fi
exec /usr/sbin/named -g -c /run/named/named.conf
