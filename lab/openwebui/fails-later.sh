#!/bin/sh
# The lab's late-failing Open WebUI (Dockerfile.late): healthy first, then dead PINNED_LAB_FAIL_AFTER seconds later.
open-webui serve --host 0.0.0.0 --port "${PORT:-8080}" &
app=$!
trap 'kill "$app" 2>/dev/null; wait "$app"; exit 0' TERM INT
until python3 -c "import json, sys, urllib.request; sys.exit(0 if json.load(urllib.request.urlopen('http://127.0.0.1:${PORT:-8080}/health', timeout=3)).get('status') else 1)" 2>/dev/null; do
  kill -0 "$app" 2>/dev/null || exit 1
  sleep 2
done
sleep "${PINNED_LAB_FAIL_AFTER:-60}" &
wait $!
echo "CRITICAL pinned-lab fault: the worker pool died ${PINNED_LAB_FAIL_AFTER:-60} s after start (a defect only time shows)" >&2
kill -9 "$app" 2>/dev/null
exit 1
