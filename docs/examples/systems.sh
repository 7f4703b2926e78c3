#!/usr/bin/env bash
# Every system of the site (the embedded site has two, `cluster` and `cluster2`; the compose site one): list them
# with their health, then on each, picked by the X-Machine-Name header, ask who we are, list its partitions and run
# a job that says which Slurm cluster ran it. An unknown system name is the contract's 400.
# Run from the repository root after `make up`:  bash docs/examples/systems.sh
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a   # the compose site: FIRECREST_STACK_DIR=.compose

TOKEN=$(curl -s -u "$FIRECREST_CLIENT_ID_ALICE:$FIRECREST_CLIENT_SECRET_ALICE" \
             -d grant_type=client_credentials "$FIRECREST_TOKEN_URL" | jq -r .access_token)
api() { curl -sS --fail-with-body -H "Authorization: Bearer $TOKEN" "$@"; }

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
printf '#!/bin/bash\necho "$SLURM_CLUSTER_NAME"\n' > "$SCRIPT"

# 1. The systems, each with its own health (no X-Machine-Name: status covers them all).
systems=$(api "$FIRECREST_URL/status/systems" | jq -r '.out[] | "\(.system) \(.status)"')
echo "$systems" | while read -r name status; do echo "system $name: $status"; done

for system in $(awk '{print $1}' <<<"$systems"); do
    on=(-H "X-Machine-Name: $system")
    # 2. Who we are there (a command on that system's login node).
    echo "$system whoami: $(api "${on[@]}" "$FIRECREST_URL/utilities/whoami" | jq -r .output)"
    # 3. Its partitions (a compute task).
    partitions=$(wait_task "$(api "${on[@]}" "$FIRECREST_URL/compute/partitions" | jq -r .task_id)")
    echo "$system partitions: $(jq -r '[.data[].PartitionName] | sort | join(",")' <<<"$partitions")"
    # 4. A job, and the cluster that ran it (its output file is on the shared /home).
    submitted=$(wait_task "$(api "${on[@]}" -F "file=@$SCRIPT;filename=where.sh" \
                                 "$FIRECREST_URL/compute/jobs/upload" | jq -r .task_id)")
    jobid=$(jq -r .data.jobid <<<"$submitted")
    out=$(jq -r .data.job_file_out <<<"$submitted")
    for _ in $(seq 100); do   # until the job has written its output
        ran=$(api "${on[@]}" -G --data-urlencode "targetPath=$out" "$FIRECREST_URL/utilities/view" 2>/dev/null \
              | jq -r .output) && [ -n "$ran" ] && break
        sleep 0.3
    done
    echo "$system job $jobid ran on Slurm cluster: $ran"
done

# 5. A name the site does not have: 400 and the contract's header.
curl -s -o /dev/null -D - -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: nowhere" \
     "$FIRECREST_URL/utilities/whoami" | grep -i '^x-machine-does-not-exist' | sed 's/^/unknown system: /'
