#!/bin/sh
# keepalived's health check for Cairn: exit 0 while this node's Cairn answers /health with 200.
#
#   CAIRN_ADMIN=127.0.0.1:9998 /etc/keepalived/check-cairn.sh
#
# /health answers 503 ("draining") as soon as Cairn receives SIGTERM, a stopped Cairn refuses the
# connection, and a hung one fails the 2 s timeout: each makes the check fail, and after two
# failures keepalived moves the virtual IP to the other node.
# Only POSIX sh and curl (or wget) are needed.
set -u
url="http://${CAIRN_ADMIN:-127.0.0.1:9998}/health"
if command -v curl >/dev/null 2>&1; then
  exec curl -fsS -o /dev/null --max-time 2 "$url"
fi
exec wget -q -O /dev/null -T 2 "$url"
