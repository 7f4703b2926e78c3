#!/usr/bin/env bash
# Idempotent submission: send an Idempotency-Key with a POST that creates work (a job, a transfer), and a retry
# of the same request (a timeout, a lost connection) gets the first reply again instead of a second job.
# Run from the repository root after `make up`:  bash docs/examples/idempotency.sh
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a   # the compose site: FIRECREST_STACK_DIR=.compose

TOKEN=$(curl -s -u "$FIRECREST_CLIENT_ID_ALICE:$FIRECREST_CLIENT_SECRET_ALICE" \
             -d grant_type=client_credentials "$FIRECREST_TOKEN_URL" | jq -r .access_token)
API="$FIRECREST_URL/compute"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# POST a script with a key; prints "<status> <Idempotency-Key-Reply> <body>".
submit() {  # submit KEY SCRIPT
    local status
    status=$(curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' \
                  -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM" \
                  -H "Idempotency-Key: $1" -F "file=@$2;filename=job.sh" "$API/jobs/upload")
    local reply
    reply=$(tr -d '\r' < "$WORK/headers" | awk -F': ' 'tolower($1) == "idempotency-key-reply" {print $2}')
    echo "$status ${reply:--} $(cat "$WORK/body")"
}

KEY=$(cat /proc/sys/kernel/random/uuid)   # any 1 to 255 visible ASCII characters, new for each new request
printf '#!/bin/bash\n#SBATCH --job-name=idempotent-example\necho once\n' > "$WORK/job.sh"

# 1. The first request runs: 201, `miss`, a task.
read -r status reply body <<<"$(submit "$KEY" "$WORK/job.sh")"
first=$(jq -r .task_id <<<"$body")
echo "first: $status $reply task $first"

# 2. The same request again (a retry): the first reply, `hit`; no second job.
read -r status reply body <<<"$(submit "$KEY" "$WORK/job.sh")"
echo "retry: $status $reply task $(jq -r .task_id <<<"$body")"

# 3. The key with another request: 422, nothing done.
printf '#!/bin/bash\necho another\n' > "$WORK/other.sh"
read -r status reply body <<<"$(submit "$KEY" "$WORK/other.sh")"
echo "another request: $status $(jq -r .description <<<"$body")"

# 4. A malformed key (spaces are not allowed): 400, nothing done.
read -r status reply body <<<"$(submit "not a key" "$WORK/job.sh")"
echo "bad key: $status $(jq -r .description <<<"$body")"
