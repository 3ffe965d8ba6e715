#!/bin/bash
# certbot-debian's entrypoint: certificates for DOMAIN (contact LE_EMAIL) into CERT_PATH, by
# the standalone HTTP challenge on :8080. `check` shows what would run.
set -euo pipefail
: "${DOMAIN:?}" "${LE_EMAIL:?}" "${CERT_PATH:?}" "${LOG_LEVEL:=info}"
args=(certonly --standalone --http-01-port 8080 --non-interactive --agree-tos -m "$LE_EMAIL" -d "$DOMAIN"
  --config-dir "$CERT_PATH" --work-dir /var/lib/letsencrypt --logs-dir /var/log/letsencrypt)
if [ "${1:-}" = check ]; then echo "certbot ${args[*]}"; exec certbot --version; fi
exec certbot "${args[@]}"
