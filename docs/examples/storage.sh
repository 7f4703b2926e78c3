#!/usr/bin/env bash
# Moving data in and out through the storage API: upload a local file to the cluster, download it back, then
# an internal transfer (a copy) as a job on the xfer partition. Large data never goes through the gateway: the
# task hands out Swift temp URLs, and a job on the cluster's xfer partition moves the data to or from Swift.
# Run from the repository root after `make up`:  bash docs/examples/storage.sh
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a   # the compose site: FIRECREST_STACK_DIR=.compose

TOKEN=$(curl -s -u "$FIRECREST_CLIENT_ID_ALICE:$FIRECREST_CLIENT_SECRET_ALICE" \
             -d grant_type=client_credentials "$FIRECREST_TOKEN_URL" | jq -r .access_token)
API="$FIRECREST_URL/storage"
api() { curl -sS --fail-with-body -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM" "$@"; }

# Wait until a task's status (a string) is at least $2 and print its JSON.
wait_task() {
    local task
    while :; do
        task=$(api "$FIRECREST_URL/tasks/$1" | jq .task)
        [ "$(jq -r .status <<<"$task")" \< "$2" ] || break
        sleep 0.2
    done
    echo "$task"
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
head -c 20000000 /dev/urandom > "$WORK/data.bin"
DEST="/home/alice/storage-example"

# A directory of ours on the cluster to upload into (the utilities API; mkdir -p answers 201).
api -o /dev/null -d "targetPath=$DEST" -d p=true "$FIRECREST_URL/utilities/mkdir"

# 1. Upload. The task reaches 111 with what to do: run data.msg.command (sh + curl; it also handles files over
#    Swift's 5 GiB object limit), or PUT the file to data.msg.parameters.url yourself.
task_id=$(api -d "sourcePath=$WORK/data.bin" -d "targetPath=$DEST" "$API/xfer-external/upload" | jq -r .task_id)
command=$(wait_task "$task_id" 111 | jq -r .data.msg.command)
eval "$command"
# The service notices the upload within a second; a job on the xfer partition pulls it, checks it, renames it.
uploaded=$(wait_task "$task_id" 114)
echo "upload: $(jq -r '"\(.status) \(.data.target)"' <<<"$uploaded")"

# 2. Download. A job pushes the file to Swift; at 117, data.url is a temp URL to GET (no token needed).
task_id=$(api -d "sourcePath=$DEST/data.bin" "$API/xfer-external/download" | jq -r .task_id)
downloaded=$(wait_task "$task_id" 117)
curl -sS --fail -o "$WORK/back.bin" "$(jq -r .data.url <<<"$downloaded")"
echo "download: $(jq -r .status <<<"$downloaded") $(cmp -s "$WORK/data.bin" "$WORK/back.bin" && echo identical)"

# 3. Done with the URL: invalidate it (the object is deleted; the URL then answers 404).
api -o /dev/null -X POST -H "X-Task-Id: $task_id" "$API/xfer-external/invalidate"
echo "invalidated: $(curl -s -o /dev/null -w '%{http_code}' "$(jq -r .data.url <<<"$downloaded")")"

# 4. An internal transfer: a copy as a job on the xfer partition. The task (a compute task) reports the job
#    submitted; the job's output and errors go to job-<id>.out/.err in its directory.
task_id=$(api -d "sourcePath=$DEST/data.bin" -d "targetPath=$DEST/copy.bin" -d jobName=example-copy \
              "$API/xfer-internal/cp" | jq -r .task_id)
submitted=$(wait_task "$task_id" 200)
echo "cp job: $(jq -r '"\(.status) \(.data.jobid)"' <<<"$submitted")"

# 5. A mistake is a clear error at once: the target directory must exist and be writable by us.
echo "bad target: $(curl -s -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM" \
    -d "sourcePath=$WORK/data.bin" -d "targetPath=/home/bob" "$API/xfer-external/upload")"
