#!/bin/sh
# Registers demo services in Consul with the agent HTTP API, as a deploy script or a
# configuration-management run would. Only curl is needed.
#
#   CONSUL=http://127.0.0.1:8500 API_1=10.0.0.11 API_2=10.0.0.12 CANARY=10.0.0.13 sh register.sh
#
# Ports default to PORT (8080); API_1_PORT, API_2_PORT and CANARY_PORT set them one by one.
# With REDIS=host (and REDIS_PORT, default 6379), a redis instance is registered too, with a TCP
# check, as a TCP route on the port of Cairn's `proto=tcp` listener (TCP_PORT, default 6379).
#
# Each instance gets a route tag (`urlprefix-/api strip=/api`: Cairn routes /api/* to it without
# the /api prefix), an HTTP check the agent runs every 2 s (an instance receives traffic only
# while it passes), and Consul Weights (api-2 gets twice api-1's share). The canary carries the
# tag `canary`; the KV key cairn/config/canary gives it 10 % of /api, whatever its instance count.
set -eu

CONSUL="${CONSUL:-http://127.0.0.1:8500}"
API_1="${API_1:-127.0.0.1}"
API_2="${API_2:-127.0.0.1}"
CANARY="${CANARY:-127.0.0.1}"
PORT="${PORT:-8080}"
AUTH=""
if [ -n "${CONSUL_HTTP_TOKEN:-}" ]; then AUTH="X-Consul-Token: ${CONSUL_HTTP_TOKEN}"; fi

put() { # path body
  curl -fsS -X PUT ${AUTH:+-H "$AUTH"} --data "$2" "${CONSUL}$1" >/dev/null
}

# Consul may still be electing its leader when this runs.
i=0
until curl -fsS "${CONSUL}/v1/status/leader" | grep -q ':'; do
  i=$((i + 1))
  [ "$i" -lt 60 ] || { echo "register.sh: no Consul leader at ${CONSUL}" >&2; exit 1; }
  sleep 1
done

register() { # id address port weight extra-tags
  put /v1/agent/service/register "{
    \"ID\": \"$1\",
    \"Name\": \"api\",
    \"Address\": \"$2\",
    \"Port\": $3,
    \"Tags\": [\"urlprefix-/api strip=/api\"$5],
    \"Weights\": { \"Passing\": $4, \"Warning\": 1 },
    \"Check\": { \"HTTP\": \"http://$2:$3/health\", \"Interval\": \"2s\", \"Timeout\": \"1s\" }
  }"
  echo "registered $1 at $2:$3 (weight $4)"
}

register api-1 "$API_1" "${API_1_PORT:-$PORT}" 1 ''
register api-2 "$API_2" "${API_2_PORT:-$PORT}" 2 ''
register api-canary "$CANARY" "${CANARY_PORT:-$PORT}" 1 ', "canary"'

if [ -n "${REDIS:-}" ]; then
  put /v1/agent/service/register "{
    \"ID\": \"redis-1\",
    \"Name\": \"redis\",
    \"Address\": \"$REDIS\",
    \"Port\": ${REDIS_PORT:-6379},
    \"Tags\": [\"urlprefix-:${TCP_PORT:-6379} proto=tcp\"],
    \"Check\": { \"TCP\": \"$REDIS:${REDIS_PORT:-6379}\", \"Interval\": \"2s\", \"Timeout\": \"1s\" }
  }"
  echo "registered redis-1 at $REDIS:${REDIS_PORT:-6379} (TCP route :${TCP_PORT:-6379})"
fi

# Manual route commands live under cairn/config (every sub-key is read): the canary's share.
put /v1/kv/cairn/config/canary 'route weight api /api weight 0.1 tags "canary"'
echo 'cairn/config/canary: route weight api /api weight 0.1 tags "canary"'
