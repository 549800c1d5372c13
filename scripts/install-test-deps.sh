#!/usr/bin/env bash
# Installs, idempotently, what the test suite needs beyond the Rust toolchain:
# Python >= 3.8 and Node >= 18 (the wrappers need nothing else).
set -euo pipefail

need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)  # the wrapper's wss:// test makes a certificate
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
python3 -c 'import sys; assert sys.version_info >= (3, 8), "Python >= 3.8 needed"'
node -e 'if (+process.versions.node.split(".")[0] < 18) { console.error("Node >= 18 needed"); process.exit(1) }'
