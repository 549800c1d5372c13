#!/usr/bin/env bash
# Builds DistributedKube's own image from base-images/server/ with Docker.
#
#   bash scripts/server-image.sh [--base IMAGE] [--tag IMAGE] [--binaries DIR] [--push]
#
#   --base IMAGE     Debian bookworm with python3 and nodejs [default: the
#                    test environment's $DK_BASE_SERVER, else debian:bookworm-slim]
#   --tag IMAGE      the image to build [default: distributedkube/server:<version>]
#   --binaries DIR   take distributedkube and distributedkubectl from DIR
#                    [default: cargo build --release, then target/release]
#   --push           docker push the tag afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
base=${DK_BASE_SERVER:-debian:bookworm-slim}
tag="distributedkube/server:$version"
binaries=
push=
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --binaries) binaries=$2; shift 2 ;;
    --push) push=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "server-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$binaries" ]; then
  echo "server-image: cargo build --release"
  cargo build --release --locked --bin distributedkube --bin distributedkubectl
  binaries="${CARGO_TARGET_DIR:-target}/release"
fi
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp base-images/server/Dockerfile "$context/"
for binary in distributedkube distributedkubectl; do
  [ -x "$binaries/$binary" ] || { echo "server-image: $binaries/$binary is missing" >&2; exit 1; }
  cp "$binaries/$binary" "$context/"
done
echo "server-image: building $tag on $base"
docker build -q --build-arg "BASE=$base" -t "$tag" "$context" >/dev/null
if [ -n "$push" ]; then
  docker push -q "$tag" >/dev/null
  echo "server-image: pushed $tag"
fi
echo "$tag"
