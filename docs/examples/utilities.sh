#!/usr/bin/env bash
# Files on the cluster through the utilities API: mkdir, upload, ls, view, checksum, download, rm.
# Run from the repository root after `make up`:  bash docs/examples/utilities.sh
# It works in a new directory of alice's and removes it (and its local temp files) at the end, even on failure.
set -euo pipefail
set -a; . "${FIRECREST_STACK_DIR:-.stack}/env"; set +a   # the compose site: FIRECREST_STACK_DIR=.compose

# An access token for alice's client (client credentials grant).
TOKEN=$(curl -s -u "$FIRECREST_CLIENT_ID_ALICE:$FIRECREST_CLIENT_SECRET_ALICE" \
             -d grant_type=client_credentials "$FIRECREST_TOKEN_URL" | jq -r .access_token)
API="$FIRECREST_URL/utilities"

# Every call: the token, the system, and a failure on any HTTP error (the JSON error body is still shown).
api() { curl -sS --fail-with-body -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM" "$@"; }

DIR="/home/$(api "$API/whoami" | jq -r .output)/utilities-example-$$"
LOCAL=$(mktemp -d)
trap 'api -X DELETE --data-urlencode "targetPath=$DIR" "$API/rm" >/dev/null 2>&1 || true; rm -rf "$LOCAL"' EXIT
echo "working in $DIR"

# 1. A directory (201).
api -X POST --data-urlencode "targetPath=$DIR" "$API/mkdir" | jq -r '"mkdir: \(.description)"'

# 2. Upload a local file into it (multipart: the file, and the target directory).
{ echo "hello from the utilities example"; printf 'line %s\n' 2 3 4 5 6 7 8 9 10 11 12; } > "$LOCAL/hello.txt"
api -F "targetPath=$DIR" -F "file=@$LOCAL/hello.txt" "$API/upload" | jq -r '"upload: \(.description)"'

# 3. List the directory: one JSON entry per file.
api -G --data-urlencode "targetPath=$DIR" "$API/ls" \
    | jq -r '.output[] | "ls: \(.permissions) \(.user) \(.size) \(.name)"'

# 4. View the file: the whole file, as text in "output".
api -G --data-urlencode "targetPath=$DIR/hello.txt" "$API/view" \
    | jq -r '.output | split("\n") | "view: \(.[0]) ... \(.[-2]) (\(length - 1) lines)"'

# 5. Its SHA-256 on the cluster, compared with the local one.
remote=$(api -G --data-urlencode "targetPath=$DIR/hello.txt" "$API/checksum" | jq -r .output)
local_sum=$(sha256sum "$LOCAL/hello.txt" | cut -d' ' -f1)
echo "checksum: $remote $([ "$remote" = "$local_sum" ] && echo matches || echo DIFFERS)"

# 6. Download it back (raw bytes) and compare.
api -G --data-urlencode "sourcePath=$DIR/hello.txt" "$API/download" -o "$LOCAL/back.txt"
if cmp -s "$LOCAL/hello.txt" "$LOCAL/back.txt"; then echo "download: identical"; else echo "download: DIFFERS"; fi

# 7. Remove the directory (204, no body); listing it afterwards is an error with an X-Invalid-Path header.
echo "rm: HTTP $(api -X DELETE --data-urlencode "targetPath=$DIR" "$API/rm" -o /dev/null -w '%{http_code}')"
curl -s -o /dev/null -D - -H "Authorization: Bearer $TOKEN" -H "X-Machine-Name: $FIRECREST_SYSTEM" \
     -G --data-urlencode "targetPath=$DIR" "$API/ls" | grep -i '^x-invalid-path' | tr -d '\r' | sed 's/^/after rm: /'
