#!/bin/sh
# One HTTP request per connection, answered on stdout (nc -ll -e).
DATA=/app/backend/data
read -r method target _ || exit 0
method=$(printf %s "$method" | tr -d '\r')
target=$(printf %s "$target" | tr -d '\r')
length=0
while read -r header; do
  header=$(printf %s "$header" | tr -d '\r')
  [ -z "$header" ] && break
  case "$header" in
    [Cc]ontent-[Ll]ength:*) length=$(printf %s "${header#*:}" | tr -d ' ') ;;
  esac
done

respond() { # status content-type body
  printf 'HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "$1" "$2" "$(printf %s "$3" | wc -c)" "$3"
}

healthy() {
  [ "$APP_VARIANT" = broken ] && return 1
  [ -f "$DATA/schema_version" ] || [ "$APP_SCHEMA" = keep ] || return 1
  started=$(cat /tmp/started_at)
  [ $(( $(date +%s) - started )) -ge "${APP_SLOW_SECONDS:-0}" ]
}

secret_matches() {
  [ -f "$DATA/.secret_key_sha256" ] || { echo null; return; }
  now=$(printf %s "${WEBUI_SECRET_KEY:-}" | sha256sum | cut -c1-64)
  [ "$now" = "$(cat "$DATA/.secret_key_sha256")" ] && echo true || echo false
}

path=${target%%\?*}
case "$method $path" in
  "GET /health")
    if healthy; then respond "200 OK" application/json '{"status": true}'
    else respond "503 Service Unavailable" application/json '{"status": false}'; fi ;;
  "GET /api/version")
    respond "200 OK" application/json "{\"version\": \"$APP_VERSION\"}" ;;
  "GET /api/config")
    schema=$(cat "$DATA/schema_version" 2>/dev/null || echo 0)
    respond "200 OK" application/json "{\"name\": \"${WEBUI_NAME:-Open WebUI}\", \"version\": \"$APP_VERSION\", \"schema\": $schema, \"secret_key_matches\": $(secret_matches)}" ;;
  "GET /api/stream")
    printf 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n'
    for i in 1 2 3; do printf 'data: {"chunk": %s}\n\n' "$i"; sleep 0.2; done
    printf 'data: [DONE]\n\n' ;;
  "PUT /api/kv/"*|"POST /api/kv/"*)
    key=${path#/api/kv/}
    case "$key" in *[!A-Za-z0-9._-]*|"") respond "400 Bad Request" text/plain "bad key"; exit 0 ;; esac
    mkdir -p "$DATA/kv"
    head -c "$length" > "$DATA/kv/$key.tmp" && mv "$DATA/kv/$key.tmp" "$DATA/kv/$key"
    respond "201 Created" application/json "{\"stored\": \"$key\"}" ;;
  "GET /api/kv/"*)
    key=${path#/api/kv/}
    case "$key" in *[!A-Za-z0-9._-]*|"") respond "400 Bad Request" text/plain "bad key"; exit 0 ;; esac
    if [ -f "$DATA/kv/$key" ]; then respond "200 OK" text/plain "$(cat "$DATA/kv/$key")"
    else respond "404 Not Found" application/json '{"detail": "Not Found"}'; fi ;;
  *)
    respond "404 Not Found" application/json '{"detail": "Not Found"}' ;;
esac
