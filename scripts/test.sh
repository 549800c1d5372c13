#!/usr/bin/env bash
# Checks format and lints, installs what the tests need, then runs them all:
# the wrappers' own tests, every Rust test (unit and end to end), the main
# suites again on PostgreSQL + S3, and the README walkthrough.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/distributedkube/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== Format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# No import circles between the modules of runner, builder or the server.
python3 scripts/module-cycles.py

bash scripts/install-test-deps.sh
echo "== The dashboard's committed bundle is what its sources make"
(cd dashboard && node build.mjs >/dev/null)
if [ -n "$(git status --porcelain -- dashboard/dist)" ]; then
  git status --short -- dashboard/dist
  echo "dashboard/dist is stale: run \`npm run build\` in dashboard/ and commit it" >&2
  exit 1
fi
# Docker Engine, the registries and the offline base images (cached across runs).
bash scripts/test-env.sh
# shellcheck disable=SC1091
source "${DK_STATE:-$HOME/.cache/distributedkube/env}/env.sh"
# PostgreSQL 15 and an S3 server for the scaled-out state.
bash scripts/scaled-out-env.sh
# shellcheck disable=SC1091
source "${DK_STATE:-$HOME/.cache/distributedkube/env}/scaled-out.sh"
# A real local Kubernetes cluster (its binaries are built once, then cached).
bash scripts/k8s-env.sh start
# shellcheck disable=SC1091
source "${DK_K8S:-/tmp/distributedkube-k8s}/env.sh"

echo "== Helm chart (lint, render, Kubernetes schemas, values schema)"
"${DK_HELM_VENV:-$HOME/.cache/distributedkube/helm-venv}/bin/python" scripts/chart-check.py
echo "== Python wrapper tests"
# DK_REQUIRE_S3=1: the S3 round trip (tests/test_s3.py) fails instead of skipping without scaled-out.sh's variables.
DK_REQUIRE_S3=1 python3 -m unittest discover -s base-images/python/tests -t base-images/python
echo "== Node.js wrapper tests"
# DK_REQUIRE_S3=1: the S3 round trip fails instead of skipping without scaled-out.sh's variables.
DK_REQUIRE_S3=1 node --test base-images/nodejs/test/
echo "== Rust tests"
cargo test --workspace --locked
echo "== The same suites on PostgreSQL + S3"
# --workspace: the same feature set as the run above, so nothing is rebuilt.
DK_SCALED_OUT=1 cargo test --workspace --locked --test pipelines --test restart --test options --test triggers --test hkube_routes --test rerun
echo "== README walkthrough"
bash scripts/walkthrough.sh
