#!/usr/bin/env bash
# Live job output: follow a job's stdout as it is written (server-sent events), then resume from an offset.
# The stream sends `job`, `output` (the new text; its id is the byte offset after it), `state`, and `end`
# with the job's final state once the job has ended and its output is read to the end.
# Run from the repository root after `make up`:  bash docs/examples/job_output.sh
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a   # the compose site: FIRECREST_STACK_DIR=.compose

TOKEN=$(curl -s -u "$FIRECREST_CLIENT_ID_ALICE:$FIRECREST_CLIENT_SECRET_ALICE" \
             -d grant_type=client_credentials "$FIRECREST_TOKEN_URL" | jq -r .access_token)
API="$FIRECREST_URL/compute"
api() { curl -sS --fail-with-body -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM" "$@"; }

# 1. A job that prints a line a second (submitted as usual: a task, whose data has the job id).
SCRIPT=$(mktemp)
trap 'rm -f "$SCRIPT"' EXIT
printf '#!/bin/bash\nfor i in 1 2 3; do echo "tick $i"; sleep 1; done\nexit 3\n' > "$SCRIPT"
task_id=$(api -F "file=@$SCRIPT;filename=ticks.sh" "$API/jobs/upload" | jq -r .task_id)
while [ "$(api "$FIRECREST_URL/tasks/$task_id" | jq -r .task.status)" \< 200 ]; do sleep 0.2; done
jobid=$(api "$FIRECREST_URL/tasks/$task_id" | jq -r .task.data.jobid)
echo "job: $jobid"

# 2. Follow its stdout until it ends (-N: print each event as it comes). Each `output` event's data lines are
#    the job's lines; the `end` event says how the job ended.
api -N "$API/jobs/$jobid/output?stream=out" | sed -n 's/^data: \(tick .*\)/output: \1/p'
api -N "$API/jobs/$jobid/output" | grep -A1 '^event: end' | sed -n 's/^data: /end: /p'

# 3. Resume from a byte offset (what a client sends as Last-Event-ID after a cut): the rest, nothing twice.
api -N -H "Last-Event-ID: 7" "$API/jobs/$jobid/output" | sed -n 's/^data: \(tick .*\)/from 7: \1/p'

# 4. The same bytes exactly, base64 (for output that is not text).
api -N "$API/jobs/$jobid/output?encoding=base64" | sed -n '/^event: output/{n;s/^data: //p}' | base64 -d |
    sed 's/^/base64: /'

# 5. Bad values are refused before any stream starts.
echo "bad offset: $(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    -H "X-Machine-Name: $FIRECREST_SYSTEM" "$API/jobs/$jobid/output?offset=-1")"
