#!/usr/bin/env bash
# Sets up, idempotently, the real components the builder's tests use:
#   - Debian packages: docker.io, docker-registry, skopeo, apache2-utils, debootstrap, curl
#   - a Docker daemon on unix:///var/run/docker.sock (runc runtime)
#   - a plain-HTTP registry on 127.0.0.1:5000 and one with htpasswd auth on 127.0.0.1:5001
#   - offline base images made from Debian packages (nothing can be pulled from Docker Hub):
#       127.0.0.1:5000/base/python:3.11  (debootstrap minbase + python3)
#       127.0.0.1:5000/base/nodejs:18    (debootstrap minbase + nodejs)
#       127.0.0.1:5000/base/server:bookworm (minbase + python3, nodejs: the server image's base)
#     Their root file systems are cached as tarballs in the state dir, so debootstrap runs once.
#   - ${DK_STATE}/env.sh with the variables the tests read.
# State (logs, registry storage, tarballs, env.sh) lives in ${DK_STATE:-$HOME/.cache/distributedkube/env}.
# Safe to run many times; a second run with everything up does nothing and takes about a second.
set -euo pipefail

STATE="${DK_STATE:-$HOME/.cache/distributedkube/env}"
REGISTRY=127.0.0.1:5000
AUTH_REGISTRY=127.0.0.1:5001
AUTH_USER=dkuser
AUTH_PASSWORD=dk-secret-pw
DOCKER_SOCK=/var/run/docker.sock
export DOCKER_HOST="unix://$DOCKER_SOCK"
BASE_PYTHON="$REGISTRY/base/python:3.11"
BASE_NODEJS="$REGISTRY/base/nodejs:18"
BASE_SERVER="$REGISTRY/base/server:bookworm"

mkdir -p "$STATE"
# One run at a time (two CI steps calling this together must not both debootstrap).
# The daemons started below get `9>&-` so that they do not inherit (and hold) the lock.
exec 9>"$STATE/test-env.lock"
if ! flock -w 900 9; then
  echo "test-env: another run holds $STATE/test-env.lock for over 15 min; giving up" >&2
  exit 1
fi

T_ALL=$EPOCHREALTIME
t_start() { T0=$EPOCHREALTIME; }
# step "name" "result": one line per step with the time it took
step() {
  local now=${EPOCHREALTIME//[.,]/} start=${T0//[.,]/}
  local ms=$(( (10#$now - 10#$start) / 1000 ))
  printf 'test-env: %-24s %s (%d.%02ds)\n' "$1:" "$2" $((ms / 1000)) $((ms % 1000 / 10))
}
die() { echo "test-env: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. packages
t_start
PACKAGES=(docker.io docker-registry skopeo apache2-utils debootstrap curl)
missing=()
for p in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-env: installing ${missing[*]}"
  # Packages must not start their own services (docker-registry's packaged one
  # listens on :5000 with auth on): deny service starts during the install.
  added_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$STATE/apt.log" 2>&1 \
    || { tail -n 30 "$STATE/apt.log" >&2; die "apt-get install ${missing[*]} failed (log: $STATE/apt.log)"; }
  if [ -n "$added_policy" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
  step packages "installed ${missing[*]}"
else
  step packages "present"
fi

# ------------------------------------------------------------- 2. dockerd
docker_up() { timeout 10 docker info >/dev/null 2>&1; }
dockerd_alive() { [ -s /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; }
t_start
if docker_up; then
  step dockerd "running"
else
  if dockerd_alive; then
    echo "test-env: a dockerd process exists but does not answer yet; waiting for it"
  else
    echo "--- dockerd started by test-env.sh at $(date -Is)" >>"$STATE/dockerd.log"
    # setsid: the daemon must outlive this script and its caller's process group.
    setsid dockerd --host "unix://$DOCKER_SOCK" </dev/null >>"$STATE/dockerd.log" 2>&1 9>&- &
  fi
  for _ in $(seq 1 120); do
    docker_up && break
    sleep 0.5
  done
  if ! docker_up; then
    echo "test-env: dockerd did not answer within 60 s; last lines of $STATE/dockerd.log:" >&2
    tail -n 40 "$STATE/dockerd.log" >&2 || true
    exit 1
  fi
  step dockerd "started (log: $STATE/dockerd.log)"
fi

# ------------------------------------------------------------ 3. registries
# start_registry NAME ADDR [HTPASSWD]: writes its config under the state dir and
# runs `docker-registry serve` in the background.
start_registry() {
  local name=$1 addr=$2 htpasswd=${3:-} dir="$STATE/$1"
  mkdir -p "$dir/data"
  {
    echo "version: 0.1"
    echo "log: {level: info, accesslog: {disabled: true}}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: $dir/data}"
    echo "  delete: {enabled: true}"
    echo "http: {addr: $addr}"
    if [ -n "$htpasswd" ]; then
      echo "auth:"
      echo "  htpasswd: {realm: distributedkube-test, path: $htpasswd}"
    fi
  } >"$dir/config.yml"
  echo "--- started by test-env.sh at $(date -Is)" >>"$dir/registry.log"
  setsid docker-registry serve "$dir/config.yml" </dev/null >>"$dir/registry.log" 2>&1 9>&- &
}
wait_http() { # wait_http URL [curl args...]: up to 15 s for a 2xx answer
  local url=$1; shift
  for _ in $(seq 1 60); do
    curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null && return 0
    sleep 0.25
  done
  return 1
}

t_start
if curl -fsS -o /dev/null --max-time 3 "http://$REGISTRY/v2/" 2>/dev/null; then
  step "registry $REGISTRY" "running"
else
  start_registry registry "$REGISTRY"
  wait_http "http://$REGISTRY/v2/" || {
    tail -n 20 "$STATE/registry/registry.log" >&2
    die "the registry on $REGISTRY did not start (is the port taken by a registry with auth?)"
  }
  step "registry $REGISTRY" "started (storage: $STATE/registry/data)"
fi

t_start
HTPASSWD_FILE="$STATE/registry-auth/htpasswd"
mkdir -p "$STATE/registry-auth"
if ! { [ -s "$HTPASSWD_FILE" ] && htpasswd -vb "$HTPASSWD_FILE" "$AUTH_USER" "$AUTH_PASSWORD" >/dev/null 2>&1; }; then
  htpasswd -Bbc "$HTPASSWD_FILE" "$AUTH_USER" "$AUTH_PASSWORD" 2>/dev/null
fi
if curl -fsS -o /dev/null --max-time 3 -u "$AUTH_USER:$AUTH_PASSWORD" "http://$AUTH_REGISTRY/v2/" 2>/dev/null; then
  step "registry $AUTH_REGISTRY" "running (auth)"
else
  code=$(curl -s -o /dev/null --max-time 3 -w '%{http_code}' "http://$AUTH_REGISTRY/v2/" 2>/dev/null || true)
  if [ "$code" != "000" ] && [ -n "$code" ]; then
    die "something on $AUTH_REGISTRY answers HTTP $code but refuses $AUTH_USER's credentials; stop it or free the port"
  fi
  start_registry registry-auth "$AUTH_REGISTRY" "$HTPASSWD_FILE"
  wait_http "http://$AUTH_REGISTRY/v2/" -u "$AUTH_USER:$AUTH_PASSWORD" || {
    tail -n 20 "$STATE/registry-auth/registry.log" >&2
    die "the authenticated registry on $AUTH_REGISTRY did not start"
  }
  step "registry $AUTH_REGISTRY" "started (auth, user $AUTH_USER)"
fi

# ------------------------------------------------------------ 4. base images
# The Debian mirror apt is configured with (deb822 .sources or one-line .list
# entries for suite "bookworm"); deb.debian.org otherwise.
debian_mirror() {
  local f m
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    m=$(awk '
      function flush() { if (is_deb && has_suite && uri != "") { print uri; found = 1; exit } }
      /^[[:space:]]*$/ { flush(); is_deb = has_suite = 0; uri = ""; next }
      /^Types:/   { for (i = 2; i <= NF; i++) if ($i == "deb") is_deb = 1 }
      /^URIs:/    { uri = $2 }
      /^Suites:/  { for (i = 2; i <= NF; i++) if ($i == "bookworm") has_suite = 1 }
      END { if (!found) flush() }' "$f")
    [ -n "$m" ] && { echo "$m"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI SUITE COMPONENTS...
    m=$(sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
    [ -n "$m" ] && { echo "$m"; return; }
  done
  echo http://deb.debian.org/debian
}

in_docker() { docker image inspect "$1" >/dev/null 2>&1; }
in_registry() { # in_registry HOST/REPO:TAG
  local ref=${1#*/} repo tag
  repo=${ref%:*}; tag=${ref##*:}
  curl -fsS -o /dev/null --max-time 5 -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://${1%%/*}/v2/$repo/manifests/$tag" 2>/dev/null
}

# base_image KIND IMAGE PACKAGE CMD
base_image() {
  local kind=$1 image=$2 package=$3 cmd=$4 tarball="$STATE/$1-rootfs.tar" did=()
  t_start
  if in_docker "$image" && in_registry "$image"; then
    step "base image $kind" "cached"
    return
  fi
  if ! in_docker "$image" && in_registry "$image"; then
    # The Engine lost it (pruned, or image GC) but the registry has it: take
    # the registry's copy, so the Engine's image and its digest match what
    # the tests compare builds against (a new import would differ).
    docker pull -q "$image" >/dev/null || die "docker pull $image failed"
    step "base image $kind" "pulled from the registry"
    return
  fi
  if ! in_docker "$image"; then
    if [ ! -s "$tarball" ]; then
      local mirror dir="$STATE/build/$kind-rootfs" keyring=()
      mirror=$(debian_mirror)
      [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] && keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
      echo "test-env: debootstrap $kind (minbase + $package) from $mirror; log: $STATE/debootstrap-$kind.log"
      rm -rf "$dir"; mkdir -p "$dir" "$STATE/debs"
      if ! debootstrap --variant=minbase --include="$package" "${keyring[@]}" \
          --cache-dir="$STATE/debs" bookworm "$dir" "$mirror" >"$STATE/debootstrap-$kind.log" 2>&1; then
        tail -n 30 "$STATE/debootstrap-$kind.log" >&2
        die "debootstrap for the $kind base image failed"
      fi
      # No host traces and no package caches in the image.
      rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/var/log/* "$dir"/tmp/*
      : >"$dir/etc/resolv.conf"
      echo localhost >"$dir/etc/hostname"
      tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
      mv "$tarball.tmp" "$tarball"
      rm -rf "$dir"
      did+=("debootstrapped")
    fi
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change "CMD [\"$cmd\"]" \
      - "$image" <"$tarball" >/dev/null || die "docker import of $tarball failed"
    did+=("imported from $(basename "$tarball")")
  fi
  if ! in_registry "$image"; then
    docker push -q "$image" >/dev/null || die "docker push $image failed"
    did+=("pushed")
  fi
  local msg
  msg=$(printf '%s, ' "${did[@]}")
  step "base image $kind" "${msg%, }"
}

base_image python "$BASE_PYTHON" python3 python3
base_image nodejs "$BASE_NODEJS" nodejs node
# The server's own image (base-images/server) runs both languages' workers.
base_image server "$BASE_SERVER" python3,nodejs,ca-certificates sh

# ---------------------------------------------------------------- 5. env.sh
t_start
new_env=$(cat <<EOF
# Written by scripts/test-env.sh: what the tests need to reach the test environment.
export DK_REGISTRY=$REGISTRY
export DK_AUTH_REGISTRY=$AUTH_REGISTRY
export DK_AUTH_USER=$AUTH_USER
export DK_AUTH_PASSWORD=$AUTH_PASSWORD
export DK_BASE_PYTHON=$BASE_PYTHON
export DK_BASE_NODEJS=$BASE_NODEJS
export DK_BASE_SERVER=$BASE_SERVER
export DOCKER_HOST=$DOCKER_HOST
EOF
)
if [ -f "$STATE/env.sh" ] && [ "$(cat "$STATE/env.sh")" = "$new_env" ]; then
  step env.sh "unchanged ($STATE/env.sh)"
else
  printf '%s\n' "$new_env" >"$STATE/env.sh.tmp"
  mv "$STATE/env.sh.tmp" "$STATE/env.sh"
  step env.sh "written ($STATE/env.sh)"
fi

T0=$T_ALL
step ready "all components up"
