#!/usr/bin/env bash
# Who am I on the cluster? A token from Keycloak, then two calls through the gateway.
# Run from the repository root after `make up`:  bash docs/examples/whoami.sh
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a   # the compose site: FIRECREST_STACK_DIR=.compose

# 1. An access token for alice's client (client credentials grant).
TOKEN=$(curl -s -u "$FIRECREST_CLIENT_ID_ALICE:$FIRECREST_CLIENT_SECRET_ALICE" \
             -d grant_type=client_credentials "$FIRECREST_TOKEN_URL" | jq -r .access_token)

# 2. Is the system up? (checked as alice: an SSH command on the login node and a Slurm ping)
curl -s -H "Authorization: Bearer $TOKEN" "$FIRECREST_URL/status/systems/$FIRECREST_SYSTEM"
echo

# 3. Alice's unix user and groups on the cluster.
curl -s -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM" \
     "$FIRECREST_URL/utilities/whoami?groups=true"
echo
