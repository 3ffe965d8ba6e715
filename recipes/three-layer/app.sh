#!/bin/sh
# The three-layer example's program: says which configuration and secret it was given.
set -eu
printf '%s\n' "$(cat /etc/app/app.conf)"
if [ -r /run/secrets/api-token ]; then echo "token: present"; else echo "token: missing"; fi
