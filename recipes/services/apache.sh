#!/bin/bash
# apache-debian's entrypoint: the site from DOMAIN, CERT_PATH and LOG_LEVEL, then Apache in the
# foreground. `check` renders and tests the configuration only.
set -euo pipefail
: "${DOMAIN:?}" "${CERT_PATH:?}" "${LOG_LEVEL:=warn}"
export APACHE_RUN_USER=www-data APACHE_RUN_GROUP=certgroup APACHE_PID_FILE=/run/apache2/apache2.pid
export APACHE_RUN_DIR=/run/apache2 APACHE_LOCK_DIR=/var/lock/apache2 APACHE_LOG_DIR=/var/log/apache2
cat > /run/apache2/site.conf <<CONF
Listen 8080
ServerName ${DOMAIN}
LogLevel ${LOG_LEVEL}
ErrorLog /dev/stderr
DocumentRoot /var/www/html
CONF
[ "${1:-}" = check ] && exec /usr/sbin/apache2 -f /etc/apache2/apache2.conf -t
exec /usr/sbin/apache2 -f /etc/apache2/apache2.conf -DFOREGROUND
