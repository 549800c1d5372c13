#!/usr/bin/env bash
# The binaries of a real local Kubernetes cluster, for the Kubernetes tests
# to come (issue 13): kube-apiserver, kube-controller-manager, kube-scheduler
# and kubelet v1.20.2. No registry ships them, so they are built once from
# Debian's `kubernetes` source package (about 20 minutes on 2 cores) and
# cached in $DK_K8S_CACHE; the source tree is removed afterwards.
#
#   bash scripts/k8s-env.sh build   # the binaries, when not cached yet
#
# Starting the cluster (etcd, control plane, a kubelet on the test Docker
# Engine) comes with the Kubernetes executor and its tests.
set -euo pipefail
CACHE=${DK_K8S_CACHE:-$HOME/.cache/distributedkube/k8s}
BIN=$CACHE/bin
SRC=$CACHE/src
KDIR=$SRC/kubernetes-1.20.5+really1.20.2
BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet"

have_binaries() {
  for b in $BINARIES; do [ -x "$BIN/$b" ] || return 1; done
}

build() {
  have_binaries && { echo "k8s: binaries cached in $BIN"; return 0; }
  local started=$SECONDS
  if ! grep -rqs 'deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list; then
    cat >/etc/apt/sources.list.d/debian-src.sources <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    apt-get -o DPkg::Lock::Timeout=600 update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq golang-go dpkg-dev jq rsync busybox-static etcd-server \
    etcd-client golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev >/dev/null
  mkdir -p "$SRC"
  cd "$SRC"
  [ -d "$KDIR" ] || { apt-get source --download-only kubernetes >/dev/null; dpkg-source -x kubernetes_*.dsc >/dev/null; }
  cd "$KDIR"
  # Go 1.19 crashes the vendored reflect2 1.0.1 (apiserver SIGSEGV): use
  # Debian's reflect2 1.0.2 and json-iterator 1.1.12 sources instead.
  if grep -q 'modern-go/reflect2 v1.0.1' vendor/modules.txt; then
    rm -f vendor/github.com/modern-go/reflect2/*.go vendor/github.com/modern-go/reflect2/*.s
    for f in /usr/share/gocode/src/github.com/modern-go/reflect2/*.{go,s}; do
      case $f in *_test.go) ;; *) cp "$f" vendor/github.com/modern-go/reflect2/ ;; esac
    done
    rm -f vendor/github.com/json-iterator/go/*.go
    for f in /usr/share/gocode/src/github.com/json-iterator/go/*.go; do
      case $f in *_test.go) ;; *) cp "$f" vendor/github.com/json-iterator/go/ ;; esac
    done
    sed -i 's#github.com/modern-go/reflect2 => github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 => github.com/modern-go/reflect2 v1.0.2#; s#github.com/json-iterator/go v1.1.10#github.com/json-iterator/go v1.1.12#g' go.mod
    sed -i 's#modern-go/reflect2 v1.0.1#modern-go/reflect2 v1.0.2#g; s#json-iterator/go v1.1.10#json-iterator/go v1.1.12#g' vendor/modules.txt
  fi
  # The sandbox has no CAP_SYS_RESOURCE: runc cannot set negative OOM scores.
  sed -i 's/defaultSandboxOOMAdj int = -998$/defaultSandboxOOMAdj int = 0/' pkg/kubelet/dockershim/docker_sandbox.go
  sed -i 's/guaranteedOOMScoreAdj int = -997$/guaranteedOOMScoreAdj int = 2/' pkg/kubelet/qos/policy.go
  mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
  # A build that failed half way leaves empty tools that make would trust.
  find _output/bin -maxdepth 1 -type f -empty -delete 2>/dev/null || true
  env GOPATH="$PWD/.go" CGO_ENABLED=0 HOME=/tmp/k8sbuildhome GOFLAGS=-mod=vendor GOPROXY=off \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet"
  mkdir -p "$BIN"
  for b in $BINARIES; do cp "_output/bin/$b" "$BIN/"; done
  # The pause image's source, for `start` (the binaries are all we keep).
  cp build/pause/linux/pause.c "$CACHE/pause.c"
  cd "$CACHE" && rm -rf "$SRC"
  echo "k8s: built in $((SECONDS - started)) s, cached in $BIN"
}

case "${1:-build}" in
  build) build ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
