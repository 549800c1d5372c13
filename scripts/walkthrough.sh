#!/usr/bin/env bash
# The seed's walkthrough on the embedded default (local processes, SQLite,
# files; no Docker, no Kubernetes): build, start a server on a free port with
# a fresh data dir, apply range/multiply/reduce, store `numbers`, run it
# (prints 30), run it with otherFlowInput.yml (prints 25050000), stop.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/distributedkube/target}"

cargo build --quiet --locked --bins
bin="$CARGO_TARGET_DIR/debug"
data=$(mktemp -d)
log="$data/server.log"
"$bin/distributedkube" serve --listen 127.0.0.1:0 --data-dir "$data/state" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT

endpoint=""
for _ in $(seq 1 200); do
  endpoint=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$log" | head -1)
  [ -n "$endpoint" ] && break
  kill -0 $server 2>/dev/null || { cat "$log"; echo "the server did not start" >&2; exit 1; }
  sleep 0.05
done
[ -n "$endpoint" ] || { cat "$log"; echo "the server did not start listening" >&2; exit 1; }
export DISTRIBUTEDKUBECTL_CONFIG="$data/cli.yml"
ctl() { echo "+ distributedkubectl $*" >&2; "$bin/distributedkubectl" --endpoint "$endpoint" "$@"; }

ctl algorithm apply --f fixtures/algorithms/range.yml >/dev/null
ctl algorithm apply --f fixtures/algorithms/multiply.yml >/dev/null
ctl algorithm apply --f fixtures/algorithms/reduce.yml >/dev/null
ctl pipeline store --f fixtures/pipelines/numbers.yml >/dev/null
# expect RESULT COMMAND...: show the command's output, and fail unless the job's result is RESULT.
expect() {
  local want=$1 out
  shift
  out=$(ctl "$@")
  printf '%s\n' "$out"
  grep -qE "^  result: $want\$" <<<"$out" || { echo "walkthrough: expected result $want from '$*'" >&2; exit 1; }
}
expect 30 exec stored numbers
expect 25050000 exec stored numbers --f fixtures/pipelines/otherFlowInput.yml
echo "walkthrough: numbers gave 30 and 25050000, as expected"
