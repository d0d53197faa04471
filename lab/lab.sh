#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The embedded lab: a Docker engine, a registry on 127.0.0.1:5000, the app
# stand-in images and three SSH-reachable Docker-in-Docker nodes.
#
#   lab/lab.sh up [--cells N | --production-nodes N] | down [--purge] | status | deps | release-tag VARIANT
#              | reset-tenants [NODE] | restart-node NODE | registry-stop | registry-start | legacy-fleet [NODE]
#              | tls-issue NODE DOMAIN [DAYS]
#              | sign REPOSITORY:TAG [--subject SAN] [--issuer URL] [--to REPOSITORY] [--over DIGEST] [--bundle-out FILE] [--unsigned]
#              | attach REPOSITORY@DIGEST BUNDLE | signing-registry-start | signing-registry-stop | signing-access
#
# Every step reuses what is already there, so `up` is safe to run again. `up --cells N` (or
# PINNED_LAB_CELLS=N) brings up N independent sets of the nodes, sharing the engine, registry and
# images, so tests can run side by side: cell 0 is inventories/lab/hosts.ini itself, cell K has
# its ports shifted by 10*K, its nodes named pinned-lab-cK-*, its :release tag release-cK and its
# inventory in $PINNED_LAB_HOME/cells/cK/inventory/. PINNED_LAB_CELL=K makes the other commands
# work on cell K.
#
# `up --production-nodes N` (or PINNED_LAB_PRODUCTION_NODES=N) brings up the fleet: a cell of one test node
# and N production nodes (1 to 99; ssh 127.0.0.1:2300+i, http 8300+i), its nodes named pinned-lab-fleet-*,
# its :release tag release-fleet, and the inventory it brings up written to $PINNED_LAB_HOME/cells/fleet/inventory/
# (test1, prod1 and prod2 carry the lab's tenants; prod3.. two stand-in tenants each). Run again with another N,
# it adds or removes production nodes. PINNED_LAB_CELL=fleet makes the other commands work on the fleet.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_HOME=${PINNED_LAB_HOME:-/var/lib/pinned-release-lab}
REGISTRY_PORT=${PINNED_LAB_REGISTRY_PORT:-5000}
REGISTRY="127.0.0.1:${REGISTRY_PORT}"
APP_REPO="${REGISTRY}/pinned/openwebui"
NETWORK=pinned-lab
# "name ssh-port http-port group", read from the lab inventory (the one place the topology is written).
INVENTORY="$ROOT/inventories/lab/hosts.ini"
mapfile -t BASE_NODES < <(awk '
  /^[[:space:]]*(#|$)/ { next }
  /^\[/ { group = substr($1, 2, length($1) - 2); next }
  { ssh = ""; http = ""
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "ansible_port") ssh = kv[2]; if (kv[1] == "lab_http_port") http = kv[2] }
    print $1, ssh, http, group }' "$INVENTORY")
CELL_PORT_STRIDE=10
MAX_CELLS=8
FLEET_SSH_PORT=2300 FLEET_HTTP_PORT=8300 MAX_FLEET_PRODUCTION=99

say() { printf '\033[1m[lab]\033[0m %s\n' "$*"; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }
[ ${#BASE_NODES[@]} -gt 0 ] || die "no nodes in $INVENTORY: restore it from git (git checkout -- inventories/lab/hosts.ini)"
for spec in "${BASE_NODES[@]}"; do
  [[ $spec =~ ^[a-z0-9-]+\ [0-9]+\ [0-9]+\ [a-z]+$ ]] \
    || die "$INVENTORY: a host needs ansible_port and lab_http_port under a [group] (got: $spec)"
done

# ---------------------------------------------------------------- cells
fleet_size() { # production nodes of the fleet: PINNED_LAB_PRODUCTION_NODES, else the size it was brought up with
  local size=${PINNED_LAB_PRODUCTION_NODES-$(cat "$LAB_HOME/cells/fleet/size" 2>/dev/null || echo 0)}
  # Two digits at most, checked before any arithmetic: bash would wrap a longer number around.
  [[ $size =~ ^[0-9]{1,2}$ ]] || die "the fleet takes 1 to $MAX_FLEET_PRODUCTION production nodes, got '$size'"
  echo "$((10#$size))"
}

use_fleet() { # NODES, NODE_PREFIX, RELEASE_TAG, CELL_DIR of the fleet (a test node and fleet_size production nodes)
  local size i
  size=$(fleet_size)
  [ "$size" -gt 0 ] || die "the fleet is not up: lab/lab.sh up --production-nodes N (1 to $MAX_FLEET_PRODUCTION)"
  CELL=fleet
  NODES=("test1 $FLEET_SSH_PORT $FLEET_HTTP_PORT test")
  for i in $(seq 1 "$size"); do NODES+=("prod$i $((FLEET_SSH_PORT + i)) $((FLEET_HTTP_PORT + i)) production"); done
  NODE_PREFIX=pinned-lab-fleet- RELEASE_TAG=release-fleet CELL_DIR=$LAB_HOME/cells/fleet
  CELL_INVENTORY=$CELL_DIR/inventory/hosts.ini
}

use_cell() { # K: NODES, NODE_PREFIX, RELEASE_TAG, CELL_DIR of cell K (or of the fleet)
  if [ "$1" = fleet ]; then use_fleet; return; fi
  if ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -ge "$MAX_CELLS" ]; then die "a cell is a number from 0 to $((MAX_CELLS - 1)) or 'fleet', got '$1'"; fi
  CELL=$1
  local spec fields shift=$((CELL * CELL_PORT_STRIDE))
  NODES=()
  for spec in "${BASE_NODES[@]}"; do
    read -r -a fields <<<"$spec"
    NODES+=("${fields[0]} $((fields[1] + shift)) $((fields[2] + shift)) ${fields[3]}")
  done
  if [ "$CELL" -eq 0 ]; then
    NODE_PREFIX=pinned-lab- RELEASE_TAG=release CELL_DIR=$LAB_HOME CELL_INVENTORY=$INVENTORY
  else
    NODE_PREFIX=pinned-lab-c$CELL- RELEASE_TAG=release-c$CELL CELL_DIR=$LAB_HOME/cells/c$CELL
    CELL_INVENTORY=$CELL_DIR/inventory/hosts.ini
  fi
}
# `up --production-nodes N` sizes the fleet before anything reads its size (PINNED_LAB_CELL=fleet included).
if [ "${1:-}" = up ] && [ "${2:-}" = --production-nodes ]; then PINNED_LAB_PRODUCTION_NODES=${3:-}; export PINNED_LAB_PRODUCTION_NODES; fi
use_cell "${PINNED_LAB_CELL:-0}"

cell_count() { cat "$LAB_HOME/cells/count" 2>/dev/null || echo 1; }

# Cell K's inventory: the lab's, with its ports, and its own :release tag for the candidates it tests.
write_cell_inventory() { # beside it, the lab inventory's group_vars and host_vars (of the checkout running `up`)
  [ "$CELL" -eq 0 ] && return
  mkdir -p "$CELL_DIR/inventory"
  ln -sfn "$ROOT/inventories/lab/group_vars" "$CELL_DIR/inventory/group_vars"
  if [ "$CELL" = fleet ]; then write_fleet_host_vars; else ln -sfn "$ROOT/inventories/lab/host_vars" "$CELL_DIR/inventory/host_vars"; fi
  { if [ "$CELL" = fleet ]; then
      echo "# The lab's fleet, written by lab/lab.sh up --production-nodes $(fleet_size): a test node and $(fleet_size) production nodes"
    else
      echo "# Lab cell $CELL, written by lab/lab.sh up --cells (the topology of inventories/lab/hosts.ini, ports +$((CELL * CELL_PORT_STRIDE)))"
    fi
    local group="" spec fields
    for spec in "${NODES[@]}"; do
      read -r -a fields <<<"$spec"
      [ "${fields[3]}" = "$group" ] || { group=${fields[3]}; printf '\n[%s]\n' "$group"; }
      echo "${fields[0]} ansible_port=${fields[1]} lab_http_port=${fields[2]}"
    done
    printf '\n[all:vars]\nlab_cell=%s\nrelease_candidate={{ release_app_repository }}:%s\n' "$CELL" "$RELEASE_TAG"
  } >"$CELL_INVENTORY.new"
  mv "$CELL_INVENTORY.new" "$CELL_INVENTORY"
}

# The fleet's host_vars: the lab's own nodes keep their tenants; each further production node gets two stand-in tenants.
write_fleet_host_vars() {
  local dir="$CELL_DIR/inventory/host_vars" spec fields name tenant port
  [ -L "$dir" ] && rm -f "$dir"
  mkdir -p "$dir"
  rm -f "$dir"/*.yml
  for spec in "${NODES[@]}"; do
    read -r -a fields <<<"$spec"; name=${fields[0]}
    if [ -f "$ROOT/inventories/lab/host_vars/$name.yml" ]; then  # a copy: a link would dangle with its checkout
      cp "$ROOT/inventories/lab/host_vars/$name.yml" "$dir/$name.yml"
      continue
    fi
    { printf -- '---\n# Written by lab/lab.sh up --production-nodes: two stand-in tenants.\nrelease_tenants:\n'
      port=3001
      for tenant in alpha beta; do
        printf '  - name: %s-%s\n    domain: %s.%s.fleet.lab\n    port: %s\n    env:\n      WEBUI_NAME: %s %s\n' \
          "$tenant" "$name" "$tenant" "$name" "$port" "${tenant^}" "$name"
        printf '    secrets:\n      WEBUI_SECRET_KEY: lab-secret-%s-%s-%s\n' "$tenant" "$name" "$(printf '%s' "$tenant$name" | sha256sum | cut -c1-6)"
        port=$((port + 1))
      done
    } >"$dir/$name.yml"
  done
}

# ---------------------------------------------------------------- packages
need_root() {
  [ "$(id -u)" -eq 0 ] || die "$1 needs root (run as root, or install it yourself: $2)"
}

# Installs Debian packages for the commands that are missing.
ensure_commands() { # "command:package" ...
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root "installing ${missing[*]}" "apt-get install ${missing[*]}"
  command -v apt-get >/dev/null || die "no apt-get here: install ${missing[*]} with your package manager"
  say "installing Debian packages: ${missing[*]}"
  if [ ! -f /var/lib/apt/lists/lock ] || ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "could not install ${missing[*]}: run 'apt-get install ${missing[*]}' and retry"
}

port_holder() { # port [address]: what listens where binding address:port would conflict
  ss -Hltnp "sport = :$1" 2>/dev/null | awk -v want="${2:-127.0.0.1}:$1" -v port="$1" '
    $4 == want || $4 == "0.0.0.0:" port || $4 == "*:" port || $4 == "[::]:" port {print $4, $6}' | head -n1
}

# ---------------------------------------------------------------- engine
ensure_engine() {
  if docker info >/dev/null 2>&1; then
    say "docker engine: reusing the running one ($(docker version -f '{{.Server.Version}}'))"
    return
  fi
  ensure_commands dockerd:docker.io docker:docker.io iptables:iptables
  mkdir -p "$LAB_HOME"
  # After a machine restart the pid files survive in /var/run; dockerd trusts them, and a recycled pid makes it
  # wait for a containerd that is not there ("timeout waiting for containerd to start").
  if ! pgrep -x dockerd >/dev/null && ! pgrep -x containerd >/dev/null; then
    rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
  fi
  say "docker engine: starting dockerd (log: $LAB_HOME/dockerd.log)"
  setsid nohup dockerd >"$LAB_HOME/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { say "docker engine: up ($(docker version -f '{{.Server.Version}}'))"; return; }
    sleep 1
  done
  die "dockerd did not answer within 60 s: see $LAB_HOME/dockerd.log"
}

# ---------------------------------------------------------------- registry
registry_answers() { # address
  curl -fsS -o /dev/null -m 3 -H 'Accept: application/json' "http://$1/v2/" 2>/dev/null \
    && curl -fsSI -m 3 "http://$1/v2/" 2>/dev/null | grep -qi '^docker-distribution-api-version'
}

start_registry() {
  mkdir -p "$LAB_HOME/registry/data"
  sed -e "s#@DATA@#$LAB_HOME/registry/data#" -e "s#@ADDR@#$REGISTRY#" \
    "$ROOT/lab/registry/config.yml.template" >"$LAB_HOME/registry/config.yml"
  say "registry: starting docker-registry on $REGISTRY (log: $LAB_HOME/registry/registry.log)"
  setsid nohup docker-registry serve "$LAB_HOME/registry/config.yml" \
    >"$LAB_HOME/registry/registry.log" 2>&1 </dev/null &
  echo $! >"$LAB_HOME/registry/registry.pid"
  for _ in $(seq 1 30); do registry_answers "$REGISTRY" && return; sleep 0.5; done
  die "registry did not answer on $REGISTRY: see $LAB_HOME/registry/registry.log"
}

ensure_registry() {
  ensure_commands docker-registry:docker-registry curl:curl ss:iproute2 socat:socat
  if registry_answers "$REGISTRY"; then
    say "registry: reusing the one answering on $REGISTRY"
  else
    local holder
    holder=$(port_holder "$REGISTRY_PORT")
    [ -z "$holder" ] || die "port $REGISTRY_PORT is taken by $holder, which is not a registry: stop it or set PINNED_LAB_REGISTRY_PORT"
    start_registry
  fi
}

stop_registry() {
  local pidfile="$LAB_HOME/registry/registry.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    say "registry: stopped"
  fi
  rm -f "$pidfile"
}

# ---------------------------------------------------------------- network
ensure_network() {
  docker network inspect "$NETWORK" >/dev/null 2>&1 || {
    say "network: creating $NETWORK"
    docker network create --label pinned-release-lab=network "$NETWORK" >/dev/null
  }
  GATEWAY=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$NETWORK")
}

# Nodes reach the registry through the bridge gateway; the registry itself
# stays on loopback.
ensure_gateway_forwarder() {
  local pidfile="$LAB_HOME/registry/gateway-forwarder.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    return
  fi
  local holder
  holder=$(port_holder "$REGISTRY_PORT" "$GATEWAY")
  [ -z "$holder" ] || die "port $GATEWAY:$REGISTRY_PORT is taken by $holder: stop it so lab nodes can reach the registry"
  setsid nohup socat TCP-LISTEN:"$REGISTRY_PORT",bind="$GATEWAY",fork,reuseaddr TCP:"$REGISTRY" \
    >"$LAB_HOME/registry/gateway-forwarder.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  say "registry: forwarding $GATEWAY:$REGISTRY_PORT -> $REGISTRY for the nodes"
}

stop_gateway_forwarder() {
  local pidfile="$LAB_HOME/registry/gateway-forwarder.pid"
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  rm -f "$pidfile"
}

# ---------------------------------------------------------------- signatures (Sigstore, offline)
# `sign` copies an image from the lab registry into the signing registry (docker-registry with htpasswd basic auth
# on 127.0.0.1:$SIGNING_REGISTRY_PORT, started on demand: @sigstore/oci only signs in when a registry asks for
# credentials), makes a real Sigstore bundle for its manifest digest with lab/sigstore/sign.js (@sigstore/sign
# against @sigstore/mock's in-process Fulcio, Rekor and TSA) and attaches it with lab/sigstore/attach.js
# (@sigstore/oci: the referrers API, or the sha256-<hex> tag on a registry without one, as distribution 2.8 is).
# The npm project is installed once per machine in $LAB_HOME/sigstore/node; the mock's keys and the trusted root
# built from them stay in $LAB_HOME/sigstore/ (trusted_root.json). The lab registry on $REGISTRY is not touched.
SIGNING_REGISTRY_PORT=${PINNED_LAB_SIGNING_REGISTRY_PORT:-5005}
SIGNING_REGISTRY="127.0.0.1:${SIGNING_REGISTRY_PORT}"
SIGNING_DIR="$LAB_HOME/signing-registry"
SIGSTORE_DIR="$LAB_HOME/sigstore"
SIGN_SUBJECT_DEFAULT="https://github.com/pinned-release/lab/.github/workflows/release.yml@refs/heads/main"
SIGN_ISSUER_DEFAULT="https://token.actions.githubusercontent.com"

signing_registry_answers() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' -m 3 "http://$SIGNING_REGISTRY/v2/" 2>/dev/null)" = 401 ] \
    && curl -sSI -m 3 "http://$SIGNING_REGISTRY/v2/" 2>/dev/null | grep -qi '^docker-distribution-api-version'
}

ensure_signing_registry() {
  ensure_commands docker-registry:docker-registry curl:curl htpasswd:apache2-utils ss:iproute2
  mkdir -p "$SIGNING_DIR/data"
  # One starter at a time: two first users at once (test workers side by side) would each write their own password.
  ( flock 9; start_signing_registry ) 9>"$SIGNING_DIR/.start.lock"
}

start_signing_registry() {
  if [ ! -s "$SIGNING_DIR/credentials" ]; then
    (umask 077; echo "lab-signer:$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$SIGNING_DIR/credentials")
  fi
  local user password holder
  IFS=: read -r user password <"$SIGNING_DIR/credentials"
  if signing_registry_answers; then return; fi
  holder=$(port_holder "$SIGNING_REGISTRY_PORT")
  [ -z "$holder" ] || die "port $SIGNING_REGISTRY_PORT is taken by $holder: stop it or set PINNED_LAB_SIGNING_REGISTRY_PORT"
  (umask 077; htpasswd -nbB "$user" "$password" >"$SIGNING_DIR/htpasswd")
  sed -e "s#@DATA@#$SIGNING_DIR/data#" -e "s#@ADDR@#$SIGNING_REGISTRY#" "$ROOT/lab/registry/config.yml.template" >"$SIGNING_DIR/config.yml"
  printf 'auth:\n  htpasswd:\n    realm: pinned-lab-signing\n    path: %s\n' "$SIGNING_DIR/htpasswd" >>"$SIGNING_DIR/config.yml"
  # 9>&-: the registry outlives this start and must not hold its lock.
  setsid nohup docker-registry serve "$SIGNING_DIR/config.yml" >"$SIGNING_DIR/registry.log" 2>&1 </dev/null 9>&- &
  echo $! >"$SIGNING_DIR/registry.pid"
  for _ in $(seq 1 30); do signing_registry_answers && { say "signing registry: up on $SIGNING_REGISTRY (basic auth, credentials in $SIGNING_DIR/credentials)"; return; }; sleep 0.5; done
  die "signing registry did not answer on $SIGNING_REGISTRY: see $SIGNING_DIR/registry.log"
}

stop_signing_registry() {
  local pidfile="$SIGNING_DIR/registry.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then kill "$(cat "$pidfile")"; say "signing registry: stopped"; fi
  rm -f "$pidfile"
  pidfile="$SIGNING_DIR/gateway-forwarder.pid"
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  rm -f "$pidfile"
}

# The cell's nodes pull from the signing registry as from the lab's: the same name, 127.0.0.1:$SIGNING_REGISTRY_PORT,
# on the controller and on each node (a forwarder there to the bridge gateway, one on the gateway to the registry on
# loopback), each node's Docker logged in with the lab's credentials (in /root/.docker/config.json, which the
# Docker SDK of the host modules reads). Safe to run again; a restarted node needs it again.
cmd_signing_access() {
  ensure_signing_registry
  ensure_network
  local pidfile="$SIGNING_DIR/gateway-forwarder.pid" holder spec fields user password
  if ! { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }; then
    holder=$(port_holder "$SIGNING_REGISTRY_PORT" "$GATEWAY")
    [ -z "$holder" ] || die "port $GATEWAY:$SIGNING_REGISTRY_PORT is taken by $holder: stop it so lab nodes can reach the signing registry"
    setsid nohup socat TCP-LISTEN:"$SIGNING_REGISTRY_PORT",bind="$GATEWAY",fork,reuseaddr TCP:"$SIGNING_REGISTRY" \
      >"$SIGNING_DIR/gateway-forwarder.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  fi
  IFS=: read -r user password <"$SIGNING_DIR/credentials"
  for spec in "${NODES[@]}"; do
    read -r -a fields <<<"$spec"
    node_ssh "${fields[1]}" "curl -s -o /dev/null -m 3 http://$SIGNING_REGISTRY/v2/ || {
        setsid nohup socat TCP-LISTEN:$SIGNING_REGISTRY_PORT,bind=127.0.0.1,fork,reuseaddr \
          TCP:$GATEWAY:$SIGNING_REGISTRY_PORT >/dev/null 2>&1 </dev/null &
        for _ in 1 2 3 4 5 6 7 8 9 10; do curl -s -o /dev/null -m 3 http://$SIGNING_REGISTRY/v2/ && break; sleep 0.3; done; }
      docker login -u '$user' --password-stdin $SIGNING_REGISTRY >/dev/null 2>&1" <<<"$password" \
      || die "node ${fields[0]}: cannot reach or log in to the signing registry $SIGNING_REGISTRY: make lab, then run again"
  done
  say "signing registry: $SIGNING_REGISTRY reachable and logged in from every node of cell $CELL"
}

ensure_sigstore_tools() { # the pinned npm project of lab/sigstore, installed once per machine (npm ci from its lock)
  ensure_commands node:nodejs npm:npm
  mkdir -p "$SIGSTORE_DIR"
  # One installer at a time: a second one would remove the folder the first is installing into.
  ( flock 9; install_sigstore_tools ) 9>"$SIGSTORE_DIR/.install.lock"
}

install_sigstore_tools() {
  local dir="$SIGSTORE_DIR/node" stamp
  stamp=$(cat "$ROOT/lab/sigstore/package.json" "$ROOT/lab/sigstore/package-lock.json" | sha256sum | cut -c1-16)
  [ "$(cat "$dir/.installed" 2>/dev/null)" = "$stamp" ] && return
  say "sigstore: installing lab/sigstore's npm packages in $dir (once)"
  rm -rf "$dir" && mkdir -p "$dir"
  cp "$ROOT/lab/sigstore/package.json" "$ROOT/lab/sigstore/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts) >"$SIGSTORE_DIR/npm.log" 2>&1 \
    || die "sigstore: npm ci failed: see $SIGSTORE_DIR/npm.log"
  echo "$stamp" >"$dir/.installed"
}

sigstore_node() { NODE_PATH="$SIGSTORE_DIR/node/node_modules" node "$ROOT/lab/sigstore/$1" "${@:2}"; }

signing_auth() { local user password; IFS=: read -r user password <"$SIGNING_DIR/credentials"; echo "$user:$password"; }

signed_digest() { # repository:tag -> the digest the signing registry serves for it
  curl -fsS -I -m 10 -u "$(signing_auth)" \
    -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
    "http://$SIGNING_REGISTRY/v2/${1%:*}/manifests/${1##*:}" | awk 'tolower($1) == "docker-content-digest:" {print $2}' | tr -d '\r'
}

# --to: the repository in the signing registry (default: the same path); --over: the statement names this digest
# instead of the image's (a signature replayed onto another image, for the tests); --bundle-out: a copy of the bundle.
# --unsigned: only the copy, no signature (an unsigned build next to the signed ones, for the demo).
cmd_sign() { # repository:tag [--subject SAN] [--issuer URL] [--to REPOSITORY] [--over DIGEST] [--bundle-out FILE] [--unsigned]
  local ref=${1#"$REGISTRY"/} subject=$SIGN_SUBJECT_DEFAULT issuer=$SIGN_ISSUER_DEFAULT to="" over="" out="" digest bundle
  local unsigned=""
  shift
  while [ $# -gt 0 ]; do
    if [ "$1" = --unsigned ]; then unsigned=1; shift; continue; fi
    [ $# -ge 2 ] || die "sign: $1 needs a value"
    case "$1" in
      --subject) subject=$2 ;; --issuer) issuer=$2 ;; --to) to=$2 ;; --over) over=$2 ;; --bundle-out) out=$2 ;;
      *) die "sign takes --subject, --issuer, --to, --over, --bundle-out, --unsigned; got '$1'" ;;
    esac
    shift 2
  done
  [[ $ref =~ ^[a-z0-9._/-]+:[A-Za-z0-9._-]+$ ]] || die "sign takes REPOSITORY:TAG of the lab registry (pinned/openwebui:v1), got '$ref'"
  [ -z "$to" ] || [[ $to =~ ^[a-z0-9._/-]+$ ]] || die "--to takes a repository path (lowercase), got '$to'"
  [ -z "$over" ] || [[ $over =~ ^sha256:[0-9a-f]{64}$ ]] || die "--over takes sha256:<64 hex>, got '$over'"
  local target="${to:-${ref%:*}}:${ref##*:}"
  ensure_registry
  ensure_signing_registry
  ensure_sigstore_tools
  skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false --dest-creds "$(signing_auth)" \
    "docker://$REGISTRY/$ref" "docker://$SIGNING_REGISTRY/$target" >/dev/null \
    || die "sign: copying $REGISTRY/$ref to $SIGNING_REGISTRY/$target failed (is the tag in the lab registry?)"
  ref=$target
  digest=$(signed_digest "$ref")
  [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || die "sign: $SIGNING_REGISTRY did not give a digest for $ref"
  if [ -n "$unsigned" ]; then say "copied $SIGNING_REGISTRY/${ref%:*}@$digest without a signature"; return; fi
  mkdir -p "$SIGSTORE_DIR/bundles"
  bundle=$(mktemp "$SIGSTORE_DIR/bundles/${digest#sha256:}.XXXXXX")
  # One signer at a time: the mock's keys are made on first use.
  ( flock 9
    sigstore_node sign.js --keys "$SIGSTORE_DIR" --digest "${over:-$digest}" --name "$SIGNING_REGISTRY/${ref%:*}" \
      --subject "$subject" --issuer "$issuer" --out "$bundle"
  ) 9>"$SIGSTORE_DIR/.sign.lock" || die "sign: making the bundle for $ref failed"
  cmd_attach "${ref%:*}@$digest" "$bundle"
  [ -z "$out" ] || cp "$bundle" "$out"
  say "signed $SIGNING_REGISTRY/${ref%:*}@$digest${over:+ (statement over $over)} as $subject ($issuer); trusted root $SIGSTORE_DIR/trusted_root.json"
}

cmd_attach() { # repository@digest bundle: attach a bundle (made by sign, or a test's altered copy) in the signing registry
  [[ ${1:-} =~ ^[a-z0-9._/-]+@sha256:[0-9a-f]{64}$ ]] || die "attach takes REPOSITORY@sha256:<hex> of the signing registry, got '${1:-}'"
  [ -f "${2:-}" ] || die "attach: bundle file '${2:-}' does not exist"
  ensure_signing_registry
  ensure_sigstore_tools
  local user password
  IFS=: read -r user password <"$SIGNING_DIR/credentials"
  REGISTRY_USERNAME=$user REGISTRY_PASSWORD=$password sigstore_node attach.js "$SIGNING_REGISTRY/$1" "$2" >/dev/null \
    || die "attach: attaching $2 to $SIGNING_REGISTRY/$1 failed"
}

# ---------------------------------------------------------------- the OpenID Connect provider
# oidc-provider-mock (PyPI), a provider made for tests: it takes any client id and secret and signs in whoever its
# form names, so each tenant's own client id and redirect URI are judged by the checklist, not by the provider. It
# listens on the lab network's gateway, where the nodes and the tenants' containers inside them reach it; its URL is
# written to LAB_HOME/oidc/url for the lab inventory.
OIDC_PORT=${PINNED_LAB_OIDC_PORT:-9400}
ensure_oidc_provider() {
  local dir="$LAB_HOME/oidc" pidfile="$LAB_HOME/oidc/provider.pid" url holder stamp
  mkdir -p "$dir"
  stamp=$(sha256sum <"$ROOT/lab/oidc/requirements.txt" | cut -c1-12)
  if [ "$(cat "$dir/venv/.installed" 2>/dev/null)" != "$stamp" ]; then
    say "oidc: installing oidc-provider-mock in $dir/venv (once)"
    rm -rf "$dir/venv"
    if ! { python3 -m venv "$dir/venv" \
        && "$dir/venv/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/lab/oidc/requirements.txt"; } \
        >"$dir/install.log" 2>&1; then
      die "oidc: installing oidc-provider-mock failed: see $dir/install.log"
    fi
    echo "$stamp" >"$dir/venv/.installed"
  fi
  url="http://$GATEWAY:$OIDC_PORT"
  # A provider busy with another cell's sign-ins may be slow to answer: it is given 10 s before it counts as gone.
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null \
      && curl -fsS -m 10 "$url/.well-known/openid-configuration" >/dev/null 2>&1; then
    echo "$url" >"$dir/url"
    return
  fi
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  for _ in $(seq 1 25); do  # the old one lets go of its port
    [ -n "$(port_holder "$OIDC_PORT" "$GATEWAY")" ] || break
    sleep 0.2
  done
  holder=$(port_holder "$OIDC_PORT" "$GATEWAY")
  [ -z "$holder" ] || die "port $GATEWAY:$OIDC_PORT is taken by $holder: stop it or set PINNED_LAB_OIDC_PORT"
  PYTHONWARNINGS=ignore setsid nohup "$dir/venv/bin/python" -m oidc_provider_mock --host "$GATEWAY" --port "$OIDC_PORT" \
    >"$dir/provider.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 50); do
    curl -fsS -m 3 "$url/.well-known/openid-configuration" >/dev/null 2>&1 && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || die "oidc: the provider exited at start: see $dir/provider.log"
    sleep 0.2
  done
  curl -fsS -m 3 "$url/.well-known/openid-configuration" >/dev/null 2>&1 || die "oidc: no answer from $url: see $dir/provider.log"
  echo "$url" >"$dir/url"
  say "oidc: provider at $url (oidc-provider-mock)"
}

stop_oidc_provider() {
  local pidfile="$LAB_HOME/oidc/provider.pid"
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  rm -f "$pidfile" "$LAB_HOME/oidc/url"
}

# ---------------------------------------------------------------- app images
ensure_app_images() {
  ensure_commands busybox:busybox-static
  local ctx="$LAB_HOME/build/openwebui"
  mkdir -p "$ctx"
  install -m 0755 "$(command -v busybox)" "$ctx/busybox"
  cp "$ROOT"/tests/images/openwebui/{start.sh,handler.sh} "$ctx/"
  local variant version schema slow health
  while IFS=$'\t' read -r variant version schema slow health; do
    case "$variant" in ''|'#'*) continue ;; esac
    sed "s|^# HEALTHCHECK_LINE|HEALTHCHECK $health CMD wget -q -O /dev/null http://127.0.0.1:8080/health \|\| exit 1|" \
      "$ROOT/tests/images/openwebui/Dockerfile" >"$ctx/Dockerfile"
    docker build -q -t "$APP_REPO:$variant" --build-arg APP_VARIANT="$variant" \
      --build-arg APP_VERSION="$version" --build-arg APP_SCHEMA="$schema" \
      --build-arg APP_SLOW_SECONDS="$slow" "$ctx" >/dev/null 2>"$LAB_HOME/build/docker-build.log" \
      || die "building $APP_REPO:$variant failed: see $LAB_HOME/build/docker-build.log"
    docker push -q "$APP_REPO:$variant" >/dev/null
  done <"$ROOT/tests/images/openwebui/variants.tsv"
  local listed=${STANDIN_VARIANTS% }
  say "images: $APP_REPO:{${listed// /,}} pushed"
}

# The stand-in's variants (tests/images/openwebui/variants.tsv: v1 v2 broken slow calm1 calm2); anything else is a
# version of the real Open WebUI.
STANDIN_VARIANTS=$(awk '!/^#/ && NF { printf "%s ", $1 }' "$ROOT/tests/images/openwebui/variants.tsv")
repo_of() { # variant -> repository path in the registry
  case " $STANDIN_VARIANTS " in *" $1 "*) echo pinned/openwebui; return ;; esac
  case " $WSGIDAV_VERSIONS " in *" $1 "*) echo pinned/wsgidav ;; *) echo pinned/open-webui ;; esac
}

tag_digest() { # tag [repository path] -> digest the registry serves for it
  curl -fsSI -m 5 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/${2:-pinned/openwebui}/manifests/$1" 2>/dev/null | tr -d '\r' \
    | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}' | grep .
}

release_points_to() { # [open-webui] -> which variant :release is
  local release variant repo=pinned/openwebui variants=$STANDIN_VARIANTS
  if [ "${1:-}" = open-webui ]; then
    repo=pinned/open-webui
    variants="$OPENWEBUI_VERSIONS $(for v in $OPENWEBUI_VERSIONS; do printf '%s-%s %s-%s ' "$v" "$OPENWEBUI_BROKEN_SUFFIX" "$v" "$OPENWEBUI_LATE_SUFFIX"; done)"
  fi
  release=$(tag_digest "$RELEASE_TAG" "$repo") || { echo "(missing)"; return; }
  for variant in $variants; do
    [ "$(tag_digest "$variant" "$repo" 2>/dev/null)" = "$release" ] && { echo "$variant ($release)"; return; }
  done
  echo "$release"
}

move_release_tag() { # variant (a stand-in variant, or an Open WebUI version): this cell's release tag, and its record
  local path repo state=release-variant
  path=$(repo_of "$1")
  repo="$REGISTRY/$path"
  if [ "$path" = pinned/open-webui ]; then state="release-openwebui"; fi
  if [ "$path" = pinned/wsgidav ]; then state="release-wsgidav"; fi
  docker image inspect "$repo:$1" >/dev/null 2>&1 || die "no local image $repo:$1: run 'lab/lab.sh up' first"
  mkdir -p "$CELL_DIR"
  # One move at a time per cell: the tag and the record of what it points to change together (lab.sh up reads both).
  (
    flock 9
    docker tag "$repo:$1" "$repo:$RELEASE_TAG"
    docker push -q "$repo:$RELEASE_TAG" >/dev/null
    echo "$1" >"$CELL_DIR/$state"
  ) 9>"$CELL_DIR/.release-tag.lock"
}

ensure_release_tags() { # this cell's :release tags, where they were last moved (after a rebuild, onto the new images)
  move_release_tag "$(cat "$CELL_DIR/release-variant" 2>/dev/null || echo v1)"
  [ -z "${OPENWEBUI_RELEASE_DEFAULT:-}" ] || move_release_tag "$(cat "$CELL_DIR/release-openwebui" 2>/dev/null || echo "$OPENWEBUI_RELEASE_DEFAULT")"
  [ -z "${WSGIDAV_RELEASE_DEFAULT:-}" ] || move_release_tag "$(cat "$CELL_DIR/release-wsgidav" 2>/dev/null || echo "$WSGIDAV_RELEASE_DEFAULT")"
  say "cell $CELL: stand-in :$RELEASE_TAG -> $(release_points_to)${OPENWEBUI_RELEASE_DEFAULT:+, open-webui :$RELEASE_TAG -> $(release_points_to open-webui)}"
}

# ---------------------------------------------------------------- node image
# How a node container runs (part of the node's identity: a change recreates the nodes).
NODE_RUN_FLAGS=(--init --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined
  --security-opt apparmor=unconfined --security-opt systempaths=unconfined -v /sys/fs/cgroup:/sys/fs/cgroup:rw)

node_image_tag() {
  local sum
  sum=$({ cat "$ROOT/lab/node/packages.txt" "$ROOT/lab/node/Dockerfile" "$ROOT/lab/node/entrypoint.sh" "$ROOT/lab/node/syslog.py"
          echo "${NODE_RUN_FLAGS[*]}"; } | sha256sum | cut -c1-12)
  echo "pinned-release-lab/node:$sum"
}

# A Debian bookworm minbase root with these packages, imported as an image (cached per machine).
debootstrap_image() { # tag packages(comma-separated) what
  local tag=$1 pkgs=$2 what=$3 rootfs mirror
  docker image inspect "$tag" >/dev/null 2>&1 && return
  ensure_commands debootstrap:debootstrap
  need_root "debootstrap" "debootstrap"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || die "cannot tell which Debian mirror apt uses: set one in /etc/apt/sources.list.d/debian.sources"
  rootfs="$LAB_HOME/build/rootfs-${what}"
  rm -rf "$rootfs"
  say "$what image: debootstrap bookworm (about a minute, once per machine)"
  debootstrap --variant=minbase --include="$pkgs" bookworm "$rootfs" "$mirror" >"$LAB_HOME/build/debootstrap-$what.log" 2>&1 \
    || die "debootstrap failed: see $LAB_HOME/build/debootstrap-$what.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import - "$tag" >/dev/null
  rm -rf "$rootfs"
}

ensure_node_image() {
  NODE_IMAGE=$(node_image_tag)
  docker image inspect "$NODE_IMAGE" >/dev/null 2>&1 && return
  local pkgs base
  pkgs=$(grep -v '^#' "$ROOT/lab/node/packages.txt" | paste -sd, -)
  base="pinned-release-lab/node-base:$(printf %s "$pkgs" | sha256sum | cut -c1-12)"
  debootstrap_image "$base" "$pkgs" node
  say "node image: building $NODE_IMAGE"
  docker build -q --build-arg BASE="$base" -t "$NODE_IMAGE" "$ROOT/lab/node" >/dev/null 2>"$LAB_HOME/build/docker-build.log" \
      || die "image build failed: see $LAB_HOME/build/docker-build.log"
}

# ---------------------------------------------------------------- the real Open WebUI
# Slim images of two versions with a migration between them, from PyPI, built once per machine and version.
OPENWEBUI_VERSIONS=${PINNED_LAB_OPENWEBUI_VERSIONS:-0.12.0 0.12.4}
OPENWEBUI_REPO="${REGISTRY}/pinned/open-webui"
OPENWEBUI_PACKAGES=python3,python3-venv,ca-certificates
OPENWEBUI_BROKEN_SUFFIX=pipe-save-broken
OPENWEBUI_LATE_SUFFIX=fails-later

# The wheels of one version, resolved by the image's own Python (markers like python_full_version differ from
# this machine's), downloaded once. The download runs in a container of the base image, trusting this
# machine's CA bundle and pip index (a proxy or mirror in between).
openwebui_wheels() { # version base -> prints the wheel folder
  local version=$1 base=$2 dir="$LAB_HOME/build/open-webui/wheels-$1"
  if [ -f "$dir/.complete" ]; then echo "$dir"; return 0; fi
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  "$ROOT/.venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps "open-webui==$version" -d "$dir.partial" \
    >"$dir.partial/download.log" 2>&1 || { tail -3 "$dir.partial/download.log" >&2; return 1; }
  "$ROOT/.venv/bin/python" - "$dir.partial" <<'PY' || return 1
import pathlib, sys, zipfile
folder = pathlib.Path(sys.argv[1])
wheel = next(folder.glob("open_webui-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    (folder / "requirements-slim.txt").write_bytes(archive.read("requirements-slim.txt"))
PY
  pip_download_in "$base" "$dir.partial" -r /wheels/requirements-slim.txt \
    >>"$dir.partial/download.log" 2>&1 || { tail -3 "$dir.partial/download.log" >&2; return 1; }
  touch "$dir.partial/.complete" && rm -rf "$dir" && mv "$dir.partial" "$dir"
  echo "$dir"
}

# pip download of these requirements into FOLDER (at /wheels), in a container of the base image (its own Python picks
# the wheels), trusting this machine's CA bundle and pip index (a proxy or mirror in between).
pip_download_in() { # base folder requirement...
  local base=$1 dir=$2 ca pip_env=()
  shift 2
  ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
  [ -f "$ca" ] && pip_env+=(-v "$ca:/etc/ssl/pinned-lab-ca.crt:ro" -e PIP_CERT=/etc/ssl/pinned-lab-ca.crt)
  case "${PIP_INDEX_URL:-}" in http*) pip_env+=(-e PIP_INDEX_URL="$PIP_INDEX_URL") ;; esac
  docker run --rm "${pip_env[@]}" -v "$dir:/wheels" "$base" sh -c \
    'python3 -m venv /tmp/v && exec /tmp/v/bin/pip download -q --disable-pip-version-check --only-binary=:all: -d /wheels "$@"' \
    pip-download "$@"
}

openwebui_local_tag() { # version -> the local image tag (changes with the Dockerfile)
  echo "pinned-release-lab/open-webui:$1-$(sha256sum <"$ROOT/lab/openwebui/Dockerfile" | cut -c1-12)"
}

ensure_openwebui_images() {
  local base version tag wheels ctx built=() newest
  base="pinned-release-lab/openwebui-base:$(printf %s "$OPENWEBUI_PACKAGES" | sha256sum | cut -c1-12)"
  debootstrap_image "$base" "$OPENWEBUI_PACKAGES" openwebui
  for version in $OPENWEBUI_VERSIONS; do
    tag=$(openwebui_local_tag "$version")
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
      say "open-webui $version: downloading its wheels and building a slim image (about 3 minutes, once)"
      if ! wheels=$(openwebui_wheels "$version" "$base"); then
        say "open-webui $version: its wheels could not be fetched (above); keeping the images already built"
        continue
      fi
      ctx="$LAB_HOME/build/open-webui/context-$version"
      rm -rf "$ctx" && mkdir -p "$ctx" && cp -al "$wheels" "$ctx/wheels" && cp "$ROOT/lab/openwebui/Dockerfile" "$ctx/"
      docker build -q --build-arg BASE="$base" --build-arg OPENWEBUI_VERSION="$version" -t "$tag" "$ctx" \
        >"$LAB_HOME/build/open-webui/build-$version.log" 2>&1 \
        || { say "open-webui $version: image build failed (see $LAB_HOME/build/open-webui/build-$version.log); keeping the images already built"; rm -rf "$ctx"; continue; }
      rm -rf "$ctx"
    fi
    docker tag "$tag" "$OPENWEBUI_REPO:$version" && docker push -q "$OPENWEBUI_REPO:$version" >/dev/null
    built+=("$version")
  done
  [ ${#built[@]} -gt 0 ] || { say "open-webui: no image could be built or kept; the real-app cycle cannot run"; return 0; }
  newest=${built[${#built[@]}-1]}
  tag="pinned-release-lab/open-webui:$newest-$OPENWEBUI_BROKEN_SUFFIX-$(cat "$ROOT/lab/openwebui/Dockerfile.defect" "$ROOT/lab/openwebui/defect-pipe-save.py" | sha256sum | cut -c1-12)"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    docker build -q --build-arg GOOD="$OPENWEBUI_REPO:$newest" -f "$ROOT/lab/openwebui/Dockerfile.defect" -t "$tag" \
      "$ROOT/lab/openwebui" >"$LAB_HOME/build/open-webui/build-defect.log" 2>&1 \
      || die "building the pipe-save defect of open-webui $newest failed: see $LAB_HOME/build/open-webui/build-defect.log"
  fi
  docker tag "$tag" "$OPENWEBUI_REPO:$newest-$OPENWEBUI_BROKEN_SUFFIX" && docker push -q "$OPENWEBUI_REPO:$newest-$OPENWEBUI_BROKEN_SUFFIX" >/dev/null
  tag="pinned-release-lab/open-webui:$newest-$OPENWEBUI_LATE_SUFFIX-$(cat "$ROOT/lab/openwebui/Dockerfile.late" "$ROOT/lab/openwebui/fails-later.sh" | sha256sum | cut -c1-12)"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    docker build -q --build-arg GOOD="$OPENWEBUI_REPO:$newest" -f "$ROOT/lab/openwebui/Dockerfile.late" -t "$tag" \
      "$ROOT/lab/openwebui" >"$LAB_HOME/build/open-webui/build-late.log" 2>&1 \
      || die "building the late-failing open-webui $newest failed: see $LAB_HOME/build/open-webui/build-late.log"
  fi
  docker tag "$tag" "$OPENWEBUI_REPO:$newest-$OPENWEBUI_LATE_SUFFIX" && docker push -q "$OPENWEBUI_REPO:$newest-$OPENWEBUI_LATE_SUFFIX" >/dev/null
  OPENWEBUI_RELEASE_DEFAULT=${built[0]}
  say "images: $OPENWEBUI_REPO:{${built[*]},$newest-$OPENWEBUI_BROKEN_SUFFIX,$newest-$OPENWEBUI_LATE_SUFFIX} pushed"
}

# ---------------------------------------------------------------- a second real app: WsgiDAV
# A small WebDAV server from PyPI that keeps its data as files, two versions, released with the generic-http app
# profile (tests/integration/test_app_profiles.py). Built once per machine and version, on the same base as Open WebUI.
WSGIDAV_VERSIONS="4.3.2 4.3.3"
WSGIDAV_REPO="${REGISTRY}/pinned/wsgidav"

ensure_wsgidav_images() {
  local base version tag dir ctx built=()
  base="pinned-release-lab/openwebui-base:$(printf %s "$OPENWEBUI_PACKAGES" | sha256sum | cut -c1-12)"
  debootstrap_image "$base" "$OPENWEBUI_PACKAGES" openwebui
  for version in $WSGIDAV_VERSIONS; do
    tag="pinned-release-lab/wsgidav:$version-$(cat "$ROOT/lab/wsgidav/Dockerfile" "$ROOT/lab/wsgidav/requirements.txt" | sha256sum | cut -c1-12)"
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
      say "wsgidav $version: downloading its wheels and building its image (once)"
      dir="$LAB_HOME/build/wsgidav/context-$version"
      rm -rf "$dir" && mkdir -p "$dir/wheels" && cp "$ROOT/lab/wsgidav/Dockerfile" "$dir/" \
        && cp "$ROOT/lab/wsgidav/requirements.txt" "$dir/wheels/"
      if ! pip_download_in "$base" "$dir/wheels" "wsgidav==$version" -r /wheels/requirements.txt \
          >"$LAB_HOME/build/wsgidav/download-$version.log" 2>&1 \
        || ! docker build -q --build-arg BASE="$base" --build-arg WSGIDAV_VERSION="$version" -t "$tag" "$dir" \
          >"$LAB_HOME/build/wsgidav/build-$version.log" 2>&1; then
        say "wsgidav $version: its image could not be built (see $LAB_HOME/build/wsgidav/); the generic-http cycle cannot run"
        rm -rf "$dir"
        continue
      fi
      rm -rf "$dir"
    fi
    docker tag "$tag" "$WSGIDAV_REPO:$version" && docker push -q "$WSGIDAV_REPO:$version" >/dev/null
    built+=("$version")
  done
  [ ${#built[@]} -gt 0 ] || return 0
  WSGIDAV_RELEASE_DEFAULT=${built[0]}
  say "images: $WSGIDAV_REPO:{${built[*]}} pushed"
}

# ---------------------------------------------------------------- ssh
ensure_ssh_material() {
  ensure_commands ssh:openssh-client ssh-keygen:openssh-client
  local dir="$LAB_HOME/ssh" spec fields cell i
  mkdir -p "$dir" && chmod 0700 "$dir"
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C pinned-release-lab -f "$dir/id_ed25519"
  : >"$dir/known_hosts.new"
  for cell in $(seq 0 $((MAX_CELLS - 1))); do  # a node has the same host key in every cell, on its cell's port
    for spec in "${BASE_NODES[@]}"; do
      read -r -a fields <<<"$spec"
      known_host "${fields[0]}" "$((fields[1] + cell * CELL_PORT_STRIDE))" >>"$dir/known_hosts.new"
    done
  done
  known_host test1 "$FLEET_SSH_PORT" >>"$dir/known_hosts.new"
  for i in $(seq 1 "$(fleet_size)"); do known_host "prod$i" "$((FLEET_SSH_PORT + i))" >>"$dir/known_hosts.new"; done
  mv "$dir/known_hosts.new" "$dir/known_hosts"
}

known_host() { # name ssh-port: the known_hosts line of node NAME on that port (its host key made on first use)
  local keys="$LAB_HOME/ssh/hostkeys/$1"
  mkdir -p "$keys"
  [ -f "$keys/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "$1" -f "$keys/ssh_host_ed25519_key"
  printf '[127.0.0.1]:%s %s\n' "$2" "$(cut -d' ' -f1,2 "$keys/ssh_host_ed25519_key.pub")"
}

# ---------------------------------------------------------------- nodes
node_ssh() { # ssh-port command...
  local port=$1; shift
  ssh -q -i "$LAB_HOME/ssh/id_ed25519" -o UserKnownHostsFile="$LAB_HOME/ssh/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=3 -p "$port" root@127.0.0.1 "$@"
}

ensure_node() { # name ssh-port http-port group
  local name=$1 ssh_port=$2 http_port=$3 group=$4 container="${NODE_PREFIX}$1" state
  state=$(docker inspect -f '{{.State.Status}} {{.Config.Image}}' "$container" 2>/dev/null || true)
  if [ -n "$state" ] && [ "${state#* }" != "$NODE_IMAGE" ]; then
    say "node ${NODE_PREFIX#pinned-lab-}$name: image changed, recreating (its tenants' data goes with it)"
    docker rm -f "$container" >/dev/null
    state=""
  fi
  case "${state%% *}" in
    running) ;;
    "")
      local port holder
      for port in "$ssh_port" "$http_port"; do
        holder=$(port_holder "$port")
        [ -z "$holder" ] || die "port 127.0.0.1:$port (node $name) is taken by $holder: free it, or run 'make lab-down' if it is an old lab"
      done
      say "node ${NODE_PREFIX#pinned-lab-}$name: starting (ssh 127.0.0.1:$ssh_port, http 127.0.0.1:$http_port)"
      docker run -d "${NODE_RUN_FLAGS[@]}" --name "$container" --hostname "$name" --network "$NETWORK" \
        --label pinned-release-lab=node --label pinned-release-lab.group="$group" --label pinned-release-lab.cell="$CELL" \
        -v "${container}-docker:/var/lib/docker" \
        -v "$LAB_HOME/ssh/hostkeys/$name:/etc/ssh/lab-hostkeys:ro" \
        -v "$LAB_HOME/ssh/id_ed25519.pub:/etc/ssh/lab-authorized_keys:ro" \
        -e LAB_REGISTRY_GATEWAY="$GATEWAY" -e LAB_REGISTRY_PORT="$REGISTRY_PORT" \
        -p "127.0.0.1:$ssh_port:22" -p "127.0.0.1:$http_port:80" \
        "$NODE_IMAGE" >/dev/null ;;
    *)
      say "node ${NODE_PREFIX#pinned-lab-}$name: was ${state%% *}, starting"
      docker start "$container" >/dev/null ;;
  esac
}

wait_node() { # name ssh-port
  local container="${NODE_PREFIX}$1"
  for _ in $(seq 1 60); do
    node_ssh "$2" docker info >/dev/null 2>&1 && return
    if [ "$(docker inspect -f '{{.State.Status}}' "$container" 2>/dev/null)" = exited ]; then
      docker logs --tail 5 "$container" >&2 2>&1 || true
      die "node $1 exited while starting (last log lines above): 'make lab-down' then 'make lab' recreates it"
    fi
    sleep 1
  done
  die "node $1 did not answer over SSH with a working docker within 60 s: docker logs $container"
}

# ---------------------------------------------------------------- commands
cmd_up() { # [--cells N | --production-nodes N]
  local cells=${PINNED_LAB_CELLS:-} cell spec fields wanted=()
  case "${1:-}" in
    --cells) cells=${2:-} ;;
    --production-nodes) ;;  # its N was taken at the top, before use_cell read the fleet's size
    "") ;;
    *) die "up takes --cells N or --production-nodes N, got '$1'" ;;
  esac
  [ $# -le 2 ] || die "up takes one of --cells N and --production-nodes N, got: $*"
  cells=${cells:-$(cell_count)}
  if ! [[ $cells =~ ^[1-9][0-9]*$ ]] || [ "$cells" -gt "$MAX_CELLS" ]; then
    die "--cells takes a number from 1 to $MAX_CELLS, got '$cells'"
  fi
  if [ -n "${PINNED_LAB_PRODUCTION_NODES+set}" ]; then
    export PINNED_LAB_PRODUCTION_NODES
    local size
    size=$(fleet_size) || exit 1
    [ "$size" -gt 0 ] || die "the fleet takes 1 to $MAX_FLEET_PRODUCTION production nodes, got '$PINNED_LAB_PRODUCTION_NODES'"
    wanted=(fleet)
  elif [ -n "${PINNED_LAB_CELL:-}" ] && [ "${1:-}" != --cells ]; then
    # A test (PINNED_LAB_CELL=K, no --cells) brings its own cell back only: starting another cell's nodes would
    # undo what a test there stopped on purpose.
    wanted=("$CELL")
  else
    mapfile -t wanted < <(seq 0 $((cells - 1)))
  fi
  mkdir -p "$LAB_HOME/build" "$LAB_HOME/cells"
  ensure_engine
  ensure_registry
  ensure_network
  ensure_gateway_forwarder
  ensure_oidc_provider
  ensure_app_images
  ensure_openwebui_images
  ensure_wsgidav_images
  ensure_node_image
  ensure_ssh_material
  for cell in "${wanted[@]}"; do
    use_cell "$cell"
    [ "$cell" != fleet ] || remove_fleet_nodes_beyond "$(fleet_size)"
    ensure_release_tags
    write_cell_inventory
    for spec in "${NODES[@]}"; do read -r -a fields <<<"$spec"; ensure_node "${fields[@]}"; done
  done
  for cell in "${wanted[@]}"; do
    use_cell "$cell"
    for spec in "${NODES[@]}"; do read -r -a fields <<<"$spec"; wait_node "${fields[0]}" "${fields[1]}"; done
  done
  if [ "${wanted[0]}" = fleet ]; then
    mkdir -p "$CELL_DIR" && fleet_size >"$CELL_DIR/size"
    say "fleet is up: ${#NODES[@]} nodes (1 test, $(fleet_size) production), inventory $CELL_INVENTORY"
    return
  fi
  [ "${#wanted[@]}" -ne "$cells" ] || echo "$cells" >"$LAB_HOME/cells/count"
  say "lab is up: $cells cell(s) of ${#NODES[@]} nodes, registry $REGISTRY (make lab-status for details)"
}

remove_fleet_nodes_beyond() { # N: the fleet's production nodes past prodN go, with their Docker volumes
  local container number
  for container in $(docker ps -a --filter label=pinned-release-lab.cell=fleet --format '{{.Names}}'); do
    number=${container#pinned-lab-fleet-prod}
    if ! [[ $number =~ ^[0-9]+$ ]] || [ "$number" -le "$1" ]; then continue; fi
    docker rm -f "$container" >/dev/null
    docker volume rm -f "$container-docker" >/dev/null
    say "node fleet-prod$number: removed (the fleet is now $1 production nodes)"
  done
}

cmd_down() {
  local spec fields purge=${1:-} cell
  for cell in $(seq 0 $((MAX_CELLS - 1))); do
    use_cell "$cell"
    for spec in "${NODES[@]}"; do
      read -r -a fields <<<"$spec"; set -- "${fields[@]}"
      if docker rm -f "${NODE_PREFIX}$1" >/dev/null 2>&1; then say "node ${NODE_PREFIX#pinned-lab-}$1: removed"; fi
      if [ "$purge" = --purge ]; then docker volume rm -f "${NODE_PREFIX}$1-docker" >/dev/null 2>&1 || true; fi
    done
  done
  rm -f "$LAB_HOME/cells/count"
  local container volume
  for container in $(docker ps -a --filter label=pinned-release-lab.cell=fleet --format '{{.Names}}' 2>/dev/null); do
    docker rm -f "$container" >/dev/null && say "node ${container#pinned-lab-}: removed"
  done
  if [ "$purge" = --purge ]; then  # by name: a node removed earlier left its volume behind
    for volume in $(docker volume ls -q --filter name='^pinned-lab-fleet-' 2>/dev/null); do
      docker volume rm -f "$volume" >/dev/null 2>&1 || true
    done
  fi
  rm -f "$LAB_HOME/cells/fleet/size"
  stop_gateway_forwarder
  stop_oidc_provider
  stop_signing_registry
  stop_registry
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
  if [ "$purge" = --purge ]; then
    rm -rf "$LAB_HOME/registry/data" "$LAB_HOME/build" "$SIGNING_DIR/data"
    say "purged registry data and build caches (the node image stays: docker rmi it to rebuild)"
  fi
  say "lab is down"
}

# What a node says about itself: its containers, zombie processes (an init reaps them) and disk use.
# shellcheck disable=SC2016 # expanded on the node
NODE_FIGURES='echo "$(docker ps -q | wc -l) containers, $(ps -eo stat= | grep -c "^Z") zombies, docker $(du -sh /var/lib/docker 2>/dev/null | cut -f1), tenant data $(du -sh /opt/openwebui 2>/dev/null | cut -f1 || echo 0)"'

zombies() {
  local count=0 state
  for state in /proc/[0-9]*/stat; do
    [ "$(awk '{print $3}' "$state" 2>/dev/null)" = Z ] && count=$((count + 1))
  done
  echo "$count"
}

cmd_status() {
  local rc=0 spec state fields
  if docker info >/dev/null 2>&1; then echo "engine    up ($(docker version -f '{{.Server.Version}}'))"
  else echo "engine    DOWN"; rc=1; fi
  if registry_answers "$REGISTRY"; then
    echo "registry  up ($REGISTRY, stand-in :release -> $(release_points_to), open-webui :release -> $(release_points_to open-webui))"
  else echo "registry  DOWN ($REGISTRY)"; rc=1; fi
  local oidc_url
  oidc_url=$(cat "$LAB_HOME/oidc/url" 2>/dev/null || true)
  if [ -n "$oidc_url" ] && curl -fsS -m 3 "$oidc_url/.well-known/openid-configuration" >/dev/null 2>&1; then
    echo "oidc      up ($oidc_url, oidc-provider-mock)"
  else echo "oidc      DOWN (${oidc_url:-never started}: make lab)"; rc=1; fi
  # Started on demand by `sign`: its absence is reported, not a lab failure.
  if signing_registry_answers; then echo "signing   up ($SIGNING_REGISTRY, basic auth, trusted root $SIGSTORE_DIR/trusted_root.json)"
  else echo "signing   not running ($SIGNING_REGISTRY, on demand: lab/lab.sh sign REPOSITORY:TAG)"; fi
  local cell cells
  mapfile -t cells < <(seq 0 $(($(cell_count) - 1)))
  [ "$(fleet_size)" -eq 0 ] || cells+=(fleet)
  for cell in "${cells[@]}"; do
    use_cell "$cell"
    for spec in "${NODES[@]}"; do
      read -r -a fields <<<"$spec"; set -- "${fields[@]}"
      state=$(docker inspect -f '{{.State.Status}}' "${NODE_PREFIX}$1" 2>/dev/null || echo absent)
      if [ "$state" = running ] && node_ssh "$2" true 2>/dev/null; then
        printf 'node      %-13s up (cell %s, %s, ssh 127.0.0.1:%s, http 127.0.0.1:%s, %s)\n' "${NODE_PREFIX#pinned-lab-}$1" \
          "$cell" "$4" "$2" "$3" "$(node_ssh "$2" "$NODE_FIGURES")"
      elif [ "$cell" = fleet ]; then
        # The fleet is started on demand (make lab does not start it): down is reported, not a failure.
        printf 'node      %-13s %s (fleet, on demand: lab/lab.sh up --production-nodes %s)\n' \
          "${NODE_PREFIX#pinned-lab-}$1" "$state" "$(fleet_size)"
      else
        printf 'node      %-13s %s\n' "${NODE_PREFIX#pinned-lab-}$1" "$state"; rc=1
      fi
    done
  done
  printf 'lab       %s: %s; lab images: %s; zombies on this machine: %s\n' "$LAB_HOME" \
    "$(du -sh "$LAB_HOME" 2>/dev/null | cut -f1)" \
    "$(docker images --format '{{.Repository}} {{.Size}}' | grep -c -e '^pinned-release-lab/' -e "^$REGISTRY/pinned/") images" \
    "$(zombies)"
  return $rc
}

# Lab only: remove the tenants' containers, data, locks, audit logs and nginx sites from every node (or one).
# The starting point of an adoption: tenants started the way hand-written scripts did.
LEGACY_CONTAINERS="legacy-acme legacy-hooli"
LEGACY_VOLUMES="legacy-acme-data legacy-hooli-data"
cmd_legacy_fleet() { # [node]: docker run by tag, named volumes, ports on 0.0.0.0, env on the command line, hand-written sites
  local node=${1:-prod2} spec fields port="" image
  for spec in "${NODES[@]}"; do
    read -r -a fields <<<"$spec"
    [ "${fields[0]}" = "$node" ] && port=${fields[1]}
  done
  [ -n "$port" ] || die "legacy-fleet: no node $node in $INVENTORY"
  image="$REGISTRY/pinned/open-webui:${OPENWEBUI_VERSIONS%% *}"
  node_ssh "$port" "set -e
    docker rm -f $LEGACY_CONTAINERS >/dev/null 2>&1 || true
    docker run -d --name legacy-acme --restart unless-stopped -p 0.0.0.0:3101:8080 -v legacy-acme-data:/app/backend/data \\
      -e 'WEBUI_NAME=Acme (legacy)' -e WEBUI_SECRET_KEY=\$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \\n') $image >/dev/null
    docker run -d --name legacy-hooli --restart unless-stopped -p 0.0.0.0:3102:8080 -v legacy-hooli-data:/app/backend/data \\
      -e 'WEBUI_NAME=Hooli (legacy)' $image >/dev/null
    for pair in acme:3101 hooli:3102; do
      printf 'server {\\n  listen 80;\\n  server_name %s.legacy.lab;\\n  location / {\\n    proxy_pass http://127.0.0.1:%s;\\n    proxy_set_header Host \$host;\\n  }\\n}\\n' \\
        \${pair%%:*} \${pair#*:} > /etc/nginx/conf.d/legacy-\${pair%%:*}.conf
    done
    nginx -t 2>/dev/null && nginx -s reload" || die "legacy-fleet: starting the legacy tenants on $node failed"
  say "legacy fleet on $node: legacy-acme (key in its env) and legacy-hooli (key generated in the container), $image by tag, \
named volumes, ports 3101-3102 on 0.0.0.0, sites acme.legacy.lab and hooli.legacy.lab"
}

cmd_reset_tenants() {
  local spec fields only=${1:-}
  for spec in "${NODES[@]}"; do
    read -r -a fields <<<"$spec"; set -- "${fields[@]}"
    [ -z "$only" ] || [ "$only" = "$1" ] || continue
    node_ssh "$2" 'docker ps -aq --filter label=pinned.release.managed | xargs -r docker rm -f >/dev/null
      docker rm -f '"$LEGACY_CONTAINERS"' >/dev/null 2>&1; docker volume rm '"$LEGACY_VOLUMES"' >/dev/null 2>&1
      rm -rf /opt/openwebui /opt/apps /var/lib/pinned-release /var/log/pinned-release /etc/nginx/conf.d/pinned-release-*
      rm -f /etc/nginx/conf.d/legacy-*.conf
      : > /var/log/messages
      nginx -s reload' || die "node $1 did not answer: make lab"
  done
  say "lab tenants removed from ${only:-every node}"
}

# A node restarted as a power loss would: every process in it killed at once, then its init, sshd and dockerd again
# (dockerd starts the containers whose restart policy says so).
cmd_restart_node() { # node
  local spec fields
  for spec in "${NODES[@]}"; do
    read -r -a fields <<<"$spec"
    if [ "${fields[0]}" = "$1" ]; then
      docker restart -t 0 "${NODE_PREFIX}$1" >/dev/null || die "restarting node $1 failed: make lab"
      wait_node "${fields[0]}" "${fields[1]}"
      say "node $1: restarted"
      return
    fi
  done
  die "restart-node: no node $1 in $INVENTORY"
}

# The lab's certificate authority (its key stays on this machine, in LAB_HOME/tls) issues DOMAIN a certificate valid
# for DAYS days (a negative number: one that has already expired) and installs it on NODE as
# /etc/pinned-lab/tls/DOMAIN.{crt,key}, beside the CA's certificate (ca.crt) that checks trust.
TLS_NODE_DIR=/etc/pinned-lab/tls
cmd_tls_issue() { # node domain [days]
  local node=$1 domain=$2 days=${3:-90} spec fields port="" dir="$LAB_HOME/tls" work
  [[ "$domain" =~ ^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$ ]] || die "tls-issue: $domain is not a domain name (lower-case letters, digits, . and -)"
  if ! [[ "$days" =~ ^-?[0-9]+$ ]] || [ "$days" -eq 0 ]; then
    die "tls-issue: DAYS must be a whole number of days other than 0 (got $days)"
  fi
  for spec in "${NODES[@]}"; do
    read -r -a fields <<<"$spec"
    [ "${fields[0]}" = "$node" ] && port=${fields[1]}
  done
  [ -n "$port" ] || die "tls-issue: no node $node in $INVENTORY"
  mkdir -p "$dir" && chmod 0700 "$dir"
  ( flock 9
    [ -s "$dir/ca.crt" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 \
      -subj "/CN=pinned.release lab CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || die "tls-issue: making the lab CA failed"
  ) 9>"$dir/.lock"
  work=$(mktemp -d) && trap 'rm -rf "$work"' RETURN
  openssl req -newkey rsa:2048 -nodes -keyout "$work/key" -out "$work/csr" -subj "/CN=$domain" 2>/dev/null \
    || die "tls-issue: making a key for $domain failed"
  # openssl ca, not x509 -req: only it takes a start and an end date (an expired certificate starts in the past).
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$domain" >"$work/ext"
  printf '[ca]\ndefault_ca=lab\n[lab]\ndatabase=%s/index\nnew_certs_dir=%s\nserial=%s/serial\ndefault_md=sha256\npolicy=any\n[any]\ncommonName=supplied\n' \
    "$work" "$work" "$work" >"$work/ca.cnf"
  : >"$work/index" && openssl rand -hex 16 >"$work/serial"
  local not_before not_after
  if [ "$days" -gt 0 ]; then not_before="1 day ago"; not_after="$days days"
  else not_before="$((1 - days)) days ago"; not_after="1 hour ago"; fi
  openssl ca -batch -notext -config "$work/ca.cnf" -cert "$dir/ca.crt" -keyfile "$dir/ca.key" -extfile "$work/ext" \
    -startdate "$(date -u -d "$not_before" +%Y%m%d%H%M%SZ)" -enddate "$(date -u -d "$not_after" +%Y%m%d%H%M%SZ)" \
    -in "$work/csr" -out "$work/crt" >/dev/null 2>&1 || die "tls-issue: signing $domain's certificate failed"
  if ! { node_ssh "$port" "mkdir -p $TLS_NODE_DIR && chmod 0755 $TLS_NODE_DIR && cat > $TLS_NODE_DIR/ca.crt" <"$dir/ca.crt" \
      && node_ssh "$port" "umask 077 && cat > $TLS_NODE_DIR/$domain.key.new && mv $TLS_NODE_DIR/$domain.key.new $TLS_NODE_DIR/$domain.key" <"$work/key" \
      && node_ssh "$port" "cat > $TLS_NODE_DIR/$domain.crt.new && mv $TLS_NODE_DIR/$domain.crt.new $TLS_NODE_DIR/$domain.crt" <"$work/crt"; }; then
    die "tls-issue: installing $domain's certificate on $node failed: make lab"
  fi
  local validity="already expired"
  if [ "$days" -gt 0 ]; then validity="valid for $days day(s)"; fi
  say "node $node: $TLS_NODE_DIR/$domain.crt, issued by the lab CA, $validity"
}

# Host tools the test suite drives besides the lab itself.
cmd_deps() {
  ensure_commands curl:curl ss:iproute2 skopeo:skopeo shellcheck:shellcheck openssl:openssl htpasswd:apache2-utils \
    git:git ssh:openssh-client busybox:busybox-static docker-registry:docker-registry socat:socat \
    chromium-headless-shell:chromium-headless-shell
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  deps) cmd_deps ;;
  reset-tenants) cmd_reset_tenants "${2:-}" ;;
  deps-venv) # Debian's python3 keeps venv's pip in a separate package
    need_root "installing python3-venv" "apt-get install python3-venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null ;;
  down) cmd_down "${2:-}" ;;
  status) cmd_status ;;
  release-tag) [ -n "${2:-}" ] || die "usage: lab/lab.sh release-tag v1|v2|broken|slow (the stand-in) | <open-webui version> | <wsgidav version>"
    move_release_tag "$2"
    if [ "$(repo_of "$2")" = pinned/open-webui ]; then say "open-webui :release -> $(release_points_to open-webui)"
    else say ":release -> $(release_points_to)"; fi ;;
  registry-stop) stop_registry ;;
  registry-start) ensure_registry ;;
  legacy-fleet) cmd_legacy_fleet "${2:-}" ;;
  sign) [ -n "${2:-}" ] || die "usage: lab/lab.sh sign REPOSITORY:TAG [--subject SAN] [--issuer URL] [--to REPOSITORY] [--over DIGEST] [--bundle-out FILE] [--unsigned]"
    shift; cmd_sign "$@" ;;
  attach) cmd_attach "${2:-}" "${3:-}" ;;
  signing-registry-start) ensure_signing_registry ;;
  signing-registry-stop) stop_signing_registry ;;
  signing-access) cmd_signing_access ;;
  restart-node) [ -n "${2:-}" ] || die "usage: lab/lab.sh restart-node NODE"; cmd_restart_node "$2" ;;
  tls-issue) [ -n "${3:-}" ] || die "usage: lab/lab.sh tls-issue NODE DOMAIN [DAYS]"; cmd_tls_issue "$2" "$3" "${4:-90}" ;;
  *) sed -n '3,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
