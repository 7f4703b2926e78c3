#!/usr/bin/env bash
# The services' metrics as the site's monitoring scrapes them: GET /metrics on each service's internal port, in
# the Prometheus text format, no token. Only the site's own accounts reach those ports (users' processes get a
# TCP reset), and the public gateway answers 404 for /<service>/metrics however it is spelled.
# Run from the repository root, as root, after `make up`:  bash docs/examples/metrics.sh
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a

# 1. Every service: how many requests it has answered (all routes, methods and statuses, all of its workers).
for service in certificator status utilities tasks compute storage; do
    url_var="FIRECREST_INTERNAL_${service^^}_URL"
    answered=$(curl -sS --fail "${!url_var}/metrics" \
               | awk '/^firecrest_http_requests_total\{/ { n += $NF } END { printf "%d", n }')
    echo "$service: $answered requests answered"
done

# 2. The utilities service in detail: requests by route and status, the SSH connections its pools hold.
curl -sS --fail "$FIRECREST_INTERNAL_UTILITIES_URL/metrics" \
    | grep -E '^firecrest_(http_requests_total\{[^}]*route="/whoami"|ssh_pool_connections)' || true

# 3. Never through the gateway.
curl -s -o /dev/null -w 'through the gateway: HTTP %{http_code}\n' "$FIRECREST_URL/utilities/metrics"
