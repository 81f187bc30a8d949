#!/bin/sh
# keepalived's health check for Cairn: exit 0 while this node's Cairn answers /health with 200.
#
#   CAIRN_ADMIN=127.0.0.1:9998 /etc/keepalived/check-cairn.sh
#
# /health answers 503 ("draining") as soon as Cairn receives SIGTERM, so on `systemctl stop
# cairn` (or a deploy) the virtual IP moves to the other node while this one still finishes
# its in-flight requests for --shutdown-wait. A Cairn that hangs fails the 2 s timeout.
# Only POSIX sh and curl (or wget) are needed.
set -u
url="http://${CAIRN_ADMIN:-127.0.0.1:9998}/health"
if command -v curl >/dev/null 2>&1; then
  exec curl -fsS -o /dev/null --max-time 2 "$url"
fi
exec wget -q -O /dev/null -T 2 "$url"
