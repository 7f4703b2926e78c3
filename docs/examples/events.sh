#!/usr/bin/env bash
# Event streams (server-sent events) instead of polling: submit a job, follow its task until it is 200, follow the
# job until it ends with its exit code, then reconnect with Last-Event-ID (nothing is lost or repeated).
# Run from the repository root after `make up`:  bash docs/examples/events.sh
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a   # the compose site: FIRECREST_STACK_DIR=.compose

TOKEN=$(curl -s -u "$FIRECREST_CLIENT_ID_ALICE:$FIRECREST_CLIENT_SECRET_ALICE" \
             -d grant_type=client_credentials "$FIRECREST_TOKEN_URL" | jq -r .access_token)
AUTH=(-H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM")

# follow URL STOP [curl options...]: print each event as "<event> <id> <data>" until the jq expression STOP is true
# of an event's data (or the stream ends); LAST_ID is then the id of the last event. `curl -N`: no buffering.
follow() {
    local url=$1 stop=$2 name="" id="" line
    shift 2
    exec {stream}< <(curl -sN "${AUTH[@]}" "$@" "$url")
    local pid=$!
    while IFS= read -r -t 60 line <&"$stream"; do
        case $line in
            "event: "*) name=${line#event: } ;;
            "id: "*) id=${line#id: } ;;
            "data: "*)
                LAST_ID=${id:-$LAST_ID}
                echo "$name ${id:--} ${line#data: }"
                jq -e "$stop" <<<"${line#data: }" >/dev/null && break ;;
        esac
    done
    kill "$pid" 2>/dev/null || true
    exec {stream}<&-
}

SCRIPT=$(mktemp)
trap 'rm -f "$SCRIPT" "$SCRIPT".*' EXIT
printf '#!/bin/bash\nsleep 2\necho done\n' > "$SCRIPT"

# 1. Submit; the task follows on /tasks/events (a fresh stream starts with the task's current state).
task_id=$(curl -sS --fail-with-body "${AUTH[@]}" -F "file=@$SCRIPT;filename=events.sh" \
               "$FIRECREST_URL/compute/jobs/upload" | jq -r .task_id)
follow "$FIRECREST_URL/tasks/events?tasks=$task_id" '.status >= "200"' >"$SCRIPT.task"
while read -r _ _ data; do echo "task: $(jq -r '"\(.task_id) \(.status)"' <<<"$data")"; done <"$SCRIPT.task"
jobid=$(tail -n 1 "$SCRIPT.task" | cut -d' ' -f3- | jq -r .data.jobid)
rm -f "$SCRIPT.task"

# 2. The job on /tasks/events/jobs: its states as Slurm reports them, the last one with the exit code.
LAST_ID=""
follow "$FIRECREST_URL/tasks/events/jobs?jobs=$jobid" '.final' >"$SCRIPT.job"
while read -r _ _ data; do
    echo "job: $(jq -r '"\(.jobid) \(.state)" + (if .final then " exit \(.exit_code)" else "" end)' <<<"$data")"
done <"$SCRIPT.job"
rm -f "$SCRIPT.job"

# 3. Reconnect with Last-Event-ID: only what happened since (here nothing: the stream ends after `idle` s).
follow "$FIRECREST_URL/tasks/events/jobs?jobs=$jobid&idle=2" 'false' -H "Last-Event-ID: $LAST_ID" \
    | while read -r name _ data; do echo "resumed: $name $(jq -r '.reason // .state' <<<"$data")"; done

# 4. A bad Last-Event-ID is a 400 that says why.
echo "bad id: $(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -H 'Last-Event-ID: yesterday' \
                "$FIRECREST_URL/tasks/events")"
