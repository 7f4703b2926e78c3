#!/usr/bin/env bash
# Per-application scopes: a token holds the scopes its application was granted, and the gateway (and every service
# again) refuses a request whose scope the token lacks. firecrest-alice-scoped is a registered application whose
# FirecREST scopes are optional: its token holds those it asks for (`scope=`). pyfirecrest's clients need no
# `scope`: their applications have all four by default.
# Run from the repository root after `make up`:  bash docs/examples/scopes.sh
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a   # the compose site: FIRECREST_STACK_DIR=.compose

# A token that may read, and nothing else.
TOKEN=$(curl -s -u "$FIRECREST_CLIENT_ID_ALICE_SCOPED:$FIRECREST_CLIENT_SECRET_ALICE_SCOPED" \
             -d grant_type=client_credentials -d scope=firecrest-read "$FIRECREST_TOKEN_URL" | jq -r .access_token)
echo "granted: $(python3 -c 'import base64, json, sys; p = sys.argv[1].split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["scope"])' "$TOKEN")"

# Reading works...
curl -s -o /dev/null -w 'read: %{http_code}\n' -H "Authorization: Bearer $TOKEN" \
     -H "X-Machine-Name: $FIRECREST_SYSTEM" "$FIRECREST_URL/utilities/whoami"

# ...submitting a job needs firecrest-jobs: 403, and the body says which scope is missing.
JOB=$(mktemp)
trap 'rm -f "$JOB"' EXIT
printf '#!/bin/bash\necho hello\n' > "$JOB"
echo "submit: $(curl -s -w ' %{http_code}' -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM" \
                    -F "file=@$JOB;filename=job.sh" "$FIRECREST_URL/compute/jobs/upload")"
