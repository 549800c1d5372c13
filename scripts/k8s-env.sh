#!/usr/bin/env bash
# A real local Kubernetes cluster for the Kubernetes tests: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and a kubelet
# (v1.20.2) on the test environment's Docker Engine. No registry ships these
# binaries, so they are built once from Debian's `kubernetes` source package
# (about 15-20 minutes on 2 cores) and cached in $DK_K8S_CACHE; the source
# tree is removed afterwards.
#
#   bash scripts/k8s-env.sh build   # the binaries, when not cached yet
#   bash scripts/k8s-env.sh start   # build if needed, start (~30 s), write $K/env.sh
#   bash scripts/k8s-env.sh stop
#
# $K/env.sh exports DK_KUBECONFIG (token auth, a cluster admin). Limits: no
# CNI, kube-proxy or cluster DNS, so worker pods use the host network; the
# node is named `localhost`.
set -euo pipefail
CACHE=${DK_K8S_CACHE:-$HOME/.cache/distributedkube/k8s}
BIN=$CACHE/bin
SRC=$CACHE/src
KDIR=$SRC/kubernetes-1.20.5+really1.20.2
K=${DK_K8S:-/tmp/distributedkube-k8s}
DOCKER_ENDPOINT=${DOCKER_HOST:-unix:///var/run/docker.sock}
BINARIES="kube-apiserver kube-controller-manager kube-scheduler kubelet"
# Bumped whenever the local patches below change: cached binaries built with
# other patches are rebuilt.
PATCHES="oom-2"

have_binaries() {
  for b in $BINARIES; do [ -x "$BIN/$b" ] || return 1; done
  [ "$(cat "$BIN/.patches" 2>/dev/null)" = "$PATCHES" ]
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
  # Guaranteed pods get 2 instead of -997, so Burstable pods' floor moves from
  # 1000 + (-997) = 3 to 2 + 1 = 3 (1000 + 2 would be out of range, and
  # Docker would refuse every pod whose requests are below its limits).
  sed -i 's/guaranteedOOMScoreAdj int = -997$/guaranteedOOMScoreAdj int = 2/' pkg/kubelet/qos/policy.go
  sed -i 's/(1000 + guaranteedOOMScoreAdj)/(guaranteedOOMScoreAdj + 1)/g' pkg/kubelet/qos/policy.go
  grep -q 'guaranteedOOMScoreAdj + 1' pkg/kubelet/qos/policy.go ||
    { echo "k8s: the Burstable OOM floor in pkg/kubelet/qos/policy.go was not patched" >&2; exit 1; }
  mkdir -p .go/src/k8s.io && ln -sfn ../../.. .go/src/k8s.io/kubernetes
  # A build that failed half way leaves empty tools that make would trust.
  find _output/bin -maxdepth 1 -type f -empty -delete 2>/dev/null || true
  env GOPATH="$PWD/.go" CGO_ENABLED=0 HOME=/tmp/k8sbuildhome GOFLAGS=-mod=vendor GOPROXY=off \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet"
  mkdir -p "$BIN"
  # Renamed into place: a running binary of the old build cannot be overwritten.
  for b in $BINARIES; do cp "_output/bin/$b" "$BIN/$b.new" && mv -f "$BIN/$b.new" "$BIN/$b"; done
  echo "$PATCHES" >"$BIN/.patches"
  # The pause image's source, for `start` (the binaries are all we keep).
  cp build/pause/linux/pause.c "$CACHE/pause.c"
  cd "$CACHE" && rm -rf "$SRC"
  echo "k8s: built in $((SECONDS - started)) s, cached in $BIN"
}

pki() {
  mkdir -p "$K/pki"
  cd "$K/pki"
  [ -f ca.crt ] && return 0
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 365 -subj /CN=dk-test-ca 2>/dev/null
  printf '[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >san.cnf
  openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver 2>/dev/null
  openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 365 \
    -extfile san.cnf -extensions ext 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout kubelet-client.key -out kubelet-client.csr \
    -subj "/CN=kube-apiserver-kubelet-client/O=system:masters" 2>/dev/null
  openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kubelet-client.crt -days 365 2>/dev/null
  echo 'dk-admin-token,admin,admin,system:masters' >tokens.csv
  cat >"$K/kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:16443", certificate-authority: $K/pki/ca.crt}}]
users: [{name: admin, user: {token: dk-admin-token}}]
contexts: [{name: local, context: {cluster: local, user: admin, namespace: default}}]
current-context: local
KUBECONFIG
}

api_ready() {
  curl -fs --max-time 2 --cacert "$K/pki/ca.crt" -H 'Authorization: Bearer dk-admin-token' \
    https://127.0.0.1:16443/readyz 2>/dev/null | grep -q '^ok'
}

node_ready() {
  curl -fs --max-time 2 --cacert "$K/pki/ca.crt" -H 'Authorization: Bearer dk-admin-token' \
    https://127.0.0.1:16443/api/v1/nodes/localhost 2>/dev/null |
    python3 -c '
import json, sys
try:
    c = json.load(sys.stdin)["status"]["conditions"]
except (ValueError, KeyError):
    sys.exit(1)  # not registered yet: ask again
sys.exit(not any(x["type"] == "Ready" and x["status"] == "True" for x in c))'
}

# The pod sandbox image, built from the pause source (nothing can be pulled).
pause_image() {
  docker image inspect k8s.gcr.io/pause:3.2 >/dev/null 2>&1 && return 0
  local dir
  dir=$(mktemp -d)
  gcc -Os -static -DVERSION=v3.2-local -o "$dir/pause" "$CACHE/pause.c"
  printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$dir/Dockerfile"
  docker build -q -t k8s.gcr.io/pause:3.2 "$dir" >/dev/null 2>&1
  rm -rf "$dir"
}

start() {
  build
  local started=$SECONDS
  if [ -f "$K/kubeconfig" ] && api_ready && node_ready; then
    echo "k8s: running ($K/kubeconfig)"
  else
    stop >/dev/null 2>&1 || true
    rm -rf "$K/etcd"
    pki
    pause_image
    mkdir -p "$K/etcd" "$K/kubelet-certs" "$K/kubelet-root"
    nohup etcd --name dk --data-dir "$K/etcd/data" --listen-client-urls http://127.0.0.1:12379 \
      --advertise-client-urls http://127.0.0.1:12379 --listen-peer-urls http://127.0.0.1:12380 \
      --initial-advertise-peer-urls http://127.0.0.1:12380 --initial-cluster dk=http://127.0.0.1:12380 \
      >"$K/etcd.log" 2>&1 &
    echo $! >"$K/etcd.pid"
    nohup "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:12379 --bind-address=127.0.0.1 \
      --advertise-address=127.0.0.1 --secure-port=16443 --tls-cert-file="$K/pki/apiserver.crt" \
      --tls-private-key-file="$K/pki/apiserver.key" --client-ca-file="$K/pki/ca.crt" \
      --token-auth-file="$K/pki/tokens.csv" --authorization-mode=Node,RBAC --endpoint-reconciler-type=none \
      --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$K/pki/sa.pub" \
      --service-account-signing-key-file="$K/pki/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
      --kubelet-preferred-address-types=Hostname --kubelet-client-certificate="$K/pki/kubelet-client.crt" \
      --kubelet-client-key="$K/pki/kubelet-client.key" --allow-privileged=true \
      --enable-admission-plugins=NamespaceLifecycle,ServiceAccount >"$K/apiserver.log" 2>&1 &
    echo $! >"$K/apiserver.pid"
    for _ in $(seq 120); do api_ready && break; sleep 0.5; done
    api_ready || { tail -20 "$K/apiserver.log" >&2; echo "k8s: the API server did not come up" >&2; exit 1; }
    nohup "$BIN/kube-controller-manager" --kubeconfig="$K/kubeconfig" --leader-elect=false --bind-address=127.0.0.1 \
      --secure-port=10257 --port=0 --service-account-private-key-file="$K/pki/sa.key" --root-ca-file="$K/pki/ca.crt" \
      --controllers='*,-nodeipam' >"$K/kcm.log" 2>&1 &
    echo $! >"$K/kcm.pid"
    nohup "$BIN/kube-scheduler" --kubeconfig="$K/kubeconfig" --leader-elect=false --bind-address=127.0.0.1 \
      --secure-port=10259 --port=0 >"$K/scheduler.log" 2>&1 &
    echo $! >"$K/scheduler.pid"
    cat >"$K/kubelet-config.yaml" <<KUBELET
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
authentication: {anonymous: {enabled: false}, webhook: {enabled: false}, x509: {clientCAFile: $K/pki/ca.crt}}
authorization: {mode: AlwaysAllow}
KUBELET
    # Node name "localhost": the API server reaches the kubelet (logs) on 127.0.0.1:10250.
    nohup "$BIN/kubelet" --config="$K/kubelet-config.yaml" --kubeconfig="$K/kubeconfig" --root-dir="$K/kubelet-root" \
      --cert-dir="$K/kubelet-certs" --hostname-override=localhost --container-runtime=docker \
      --docker-endpoint="$DOCKER_ENDPOINT" --pod-infra-container-image=k8s.gcr.io/pause:3.2 --v=1 \
      >"$K/kubelet.log" 2>&1 &
    echo $! >"$K/kubelet.pid"
    for _ in $(seq 90); do node_ready && break; sleep 1; done
    node_ready || { tail -20 "$K/kubelet.log" >&2; echo "k8s: the node did not become Ready" >&2; exit 1; }
    echo "k8s: started in $((SECONDS - started)) s ($K/kubeconfig)"
  fi
  echo "export DK_KUBECONFIG=$K/kubeconfig" >"$K/env.sh"
}

stop() {
  for p in kubelet scheduler kcm apiserver etcd; do
    [ -f "$K/$p.pid" ] && kill "$(cat "$K/$p.pid")" 2>/dev/null || true
    rm -f "$K/$p.pid"
  done
  sleep 2
  docker ps -aq --filter name='^k8s_' | xargs -r docker rm -f >/dev/null
  echo "k8s: stopped"
}

case "${1:-start}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 build|start|stop" >&2; exit 2 ;;
esac
