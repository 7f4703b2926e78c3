#!/usr/bin/env bash
# Jobs on the cluster through the compute API: submit a script, follow its task, list the job, read its
# accounting record, cancel a second job. Every compute call answers at once with a task; the outcome is the
# task's `data` once its status reaches 200 (or 400, with the reason).
# Run from the repository root after `make up`:  bash docs/examples/compute.sh
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a   # the compose site: FIRECREST_STACK_DIR=.compose

TOKEN=$(curl -s -u "$FIRECREST_CLIENT_ID_ALICE:$FIRECREST_CLIENT_SECRET_ALICE" \
             -d grant_type=client_credentials "$FIRECREST_TOKEN_URL" | jq -r .access_token)
API="$FIRECREST_URL/compute"
api() { curl -sS --fail-with-body -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM" "$@"; }

# Wait for a task to finish (status "200" or "400"; statuses are strings) and print its JSON.
wait_task() {
    local task
    while :; do
        task=$(api "$FIRECREST_URL/tasks/$1" | jq .task)
        [ "$(jq -r .status <<<"$task")" \< 200 ] || break
        sleep 0.2
    done
    echo "$task"
}

SCRIPT=$(mktemp)
trap 'rm -f "$SCRIPT"' EXIT
printf '#!/bin/bash\n#SBATCH --job-name=example\necho "hello from $GREETING"\nsleep 2\n' > "$SCRIPT"

# 1. Submit: the script (multipart) and environment variables for the job (a JSON object). 201 + a task.
task_id=$(api -F "file=@$SCRIPT;filename=hello.sh" -F 'env={"GREETING": "the compute example"}' \
              "$API/jobs/upload" | jq -r .task_id)
submitted=$(wait_task "$task_id")
jobid=$(jq -r .data.jobid <<<"$submitted")
echo "submit: $(jq -r .status <<<"$submitted") job $jobid, output in $(jq -r .data.job_file_out <<<"$submitted")"

# 2. The job in the queue (listing it right after submission finds it).
listed=$(wait_task "$(api -G --data-urlencode "jobs=$jobid" "$API/jobs" | jq -r .task_id)")
echo "jobs: $(jq -r '.data."0" | "\(.jobid) \(.name) \(.state)"' <<<"$listed")"

# 3. Its accounting record once it has finished.
until acct=$(wait_task "$(api -G --data-urlencode "jobs=$jobid" "$API/acct" | jq -r .task_id)") \
      && [ "$(jq -r '.data[0].state' <<<"$acct")" = COMPLETED ]; do sleep 0.5; done
echo "acct: $(jq -r '.data[0] | "\(.jobid) \(.state) exit \(.exit_code)"' <<<"$acct")"

# 4. A long job, cancelled.
printf '#!/bin/bash\nsleep 600\n' > "$SCRIPT"
long=$(wait_task "$(api -F "file=@$SCRIPT;filename=long.sh" "$API/jobs/upload" | jq -r .task_id)" | jq -r .data.jobid)
cancelled=$(wait_task "$(api -X DELETE "$API/jobs/$long" | jq -r .task_id)")
echo "cancel: $(jq -r .status <<<"$cancelled") (job $long)"

# 5. A mistake is a clear error: a 400 at once, or a task that ends 400 with the reason.
bad=$(wait_task "$(api -F "file=@$SCRIPT;filename=bad.sh" -F account=no-such-account "$API/jobs/upload" \
                   | jq -r .task_id)")
echo "bad account: $(jq -r '"\(.status) \(.data)"' <<<"$bad")"
