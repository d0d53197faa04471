#!/bin/sh
# Open WebUI stand-in: owns a schema marker in its data directory the way the
# real app owns its database, so upgrades migrate data and old versions refuse
# data they do not understand.
set -eu
DATA=/app/backend/data
mkdir -p "$DATA"
marker="$DATA/schema_version"
current=0
[ -f "$marker" ] && current=$(cat "$marker")

if [ "$APP_SCHEMA" != keep ]; then
  if [ "$current" -gt "$APP_SCHEMA" ]; then
    echo "open-webui $APP_VERSION: data schema $current is newer than this version supports ($APP_SCHEMA); refusing to start" >&2
    exit 1
  fi
  if [ "$current" -ne 0 ] && [ "$current" -lt "$APP_SCHEMA" ]; then
    echo "open-webui $APP_VERSION: migrating data schema $current -> $APP_SCHEMA"
  fi
  echo "$APP_SCHEMA" > "$marker.tmp" && mv "$marker.tmp" "$marker"
fi

# The secret key signs sessions: remember which key the data was created with,
# so a recreate that lost the key is visible at /api/config.
if [ -n "${WEBUI_SECRET_KEY:-}" ] && [ ! -f "$DATA/.secret_key_sha256" ]; then
  printf %s "$WEBUI_SECRET_KEY" | sha256sum | cut -c1-64 > "$DATA/.secret_key_sha256"
fi

date +%s > /tmp/started_at
echo "open-webui $APP_VERSION ($APP_VARIANT) listening on :8080"
# Stop promptly on docker stop, as a real app does (PID 1 ignores TERM without a handler).
nc -ll -p 8080 -e /app/handler.sh &
trap 'kill $! 2>/dev/null; echo "open-webui $APP_VERSION: stopping"; exit 0' TERM INT
wait
