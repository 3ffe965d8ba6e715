#!/bin/bash
# mail-debian's entrypoint: postfix and dovecot settings from DOMAIN, CERT_PATH and LOG_LEVEL.
# `check` shows both configurations' key settings.
set -euo pipefail
: "${DOMAIN:?}" "${CERT_PATH:?}" "${LOG_LEVEL:=info}"
postfix_opts=(-o "myhostname=mail.${DOMAIN}" -o "mydomain=${DOMAIN}"
  -o "smtpd_tls_cert_file=${CERT_PATH}/live/${DOMAIN}/fullchain.pem" -o "smtpd_tls_key_file=${CERT_PATH}/live/${DOMAIN}/privkey.pem")
if [ "${1:-}" = check ]; then
  /usr/sbin/postconf -c /etc/postfix mail_version
  echo "postfix ${postfix_opts[*]}"
  exec /usr/sbin/dovecot --version
fi
echo "mail-debian: run postfix and dovecot under your supervisor with: ${postfix_opts[*]}" >&2
exec /usr/sbin/dovecot -F
