#!/usr/bin/env bash
# Installs, idempotently, what the test suite needs beyond the Rust toolchain:
# Python >= 3.8 and Node >= 18 (the wrappers need nothing else), a registry
# and skopeo for the image builder, HKube's wrappers and clients, Chromium
# and the dashboard's npm packages (esbuild, Playwright's driver).
set -euo pipefail

need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)  # the wrapper's wss:// test makes a certificate
# The native image builder's tests: a real OCI registry (plain and with
# htpasswd auth) and skopeo to check what was pushed.
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
# @hkube/nodejs-wrapper's zeromq binding is built against Debian's libzmq (below).
[ -f /usr/include/zmq.h ] || need_apt+=(libzmq3-dev)
# The dashboard's browser tests drive Debian's Chromium (never a downloaded browser).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
python3 -c 'import sys; assert sys.version_info >= (3, 8), "Python >= 3.8 needed"'
node -e 'if (+process.versions.node.split(".")[0] < 18) { console.error("Node >= 18 needed"); process.exit(1) }'

# A Python 3.8 that really runs, or nothing. A pyenv shim named python3.8
# exists even when 3.8 is not the active version and then fails, so take the
# first candidate that runs.
python38() {
  local candidate
  for candidate in "$(pyenv root 2>/dev/null || echo /root/.pyenv)"/versions/3.8*/bin/python3 python3.8; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 8)' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
}

# HKube's own Python wrapper, for the compatibility tests of the debug relay.
# Its pinned dependencies (pyzmq<=22, wsaccel 0.6.2) only have wheels for
# older Pythons, so it gets a Python 3.8 virtualenv of its own.
hkube_venv="${DK_HKUBE_VENV:-$HOME/.cache/distributedkube/hkube-venv38}"
if ! "$hkube_venv/bin/python" -c 'import hkube_python_wrapper' 2>/dev/null; then
  py38=$(python38)
  [ -n "$py38" ] || { echo "Python 3.8 is needed for hkube-python-wrapper 2.4.2 (install it with pyenv)" >&2; exit 1; }
  echo "installing hkube-python-wrapper 2.4.2 into $hkube_venv"
  rm -rf "$hkube_venv"
  "$py38" -m venv "$hkube_venv"
  "$hkube_venv/bin/pip" install -q hkube-python-wrapper==2.4.2
fi

# hkube-notebook, HKube's Jupyter client, for the compatibility tests of the
# REST API. A virtualenv of its own (Python 3.8 too), since it pulls a newer
# pyzmq than the wrapper's pin. Its listener tracker stops its progress server
# through werkzeug.server.shutdown, gone after Werkzeug 2.0, and "apply by
# functions" runs pipreqs (0.4.13: newer ones need a Jupyter stack).
notebook_venv="${DK_HKUBE_NOTEBOOK_VENV:-$HOME/.cache/distributedkube/hkube-notebook-venv38}"
notebook_pins="hkube-notebook==1.0.0.dev3 flask==2.0.3 werkzeug==2.0.3 pipreqs==0.4.13"
if [ "$(cat "$notebook_venv/.installed" 2>/dev/null)" != "$notebook_pins" ]; then
  py38=$(python38)
  [ -n "$py38" ] || { echo "Python 3.8 is needed for hkube-notebook 1.0.0.dev3 (install it with pyenv)" >&2; exit 1; }
  echo "installing hkube-notebook 1.0.0.dev3 into $notebook_venv"
  rm -rf "$notebook_venv"
  "$py38" -m venv "$notebook_venv"
  # shellcheck disable=SC2086
  "$notebook_venv/bin/pip" install -q $notebook_pins
  echo "$notebook_pins" >"$notebook_venv/.installed"
fi

# The real Helm library (there is no helm binary on the registries) and
# Kubernetes' schemas, for scripts/chart-check.py and scripts/helm-release.py
# (tests/helm_install.rs).
helm_venv="${DK_HELM_VENV:-$HOME/.cache/distributedkube/helm-venv}"
helm_pins="helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 PyYAML==6.0.2"
if [ "$(cat "$helm_venv/.installed" 2>/dev/null)" != "$helm_pins" ]; then
  echo "installing $helm_pins into $helm_venv"
  rm -rf "$helm_venv"
  python3 -m venv "$helm_venv"
  # shellcheck disable=SC2086
  "$helm_venv/bin/pip" install -q $helm_pins
  echo "$helm_pins" >"$helm_venv/.installed"
fi

# HKube's own Node.js wrapper, for the code API and external worker tests.
# Its zeromq 5 install script downloads a prebuilt binary or libzmq's sources
# from the internet: install with scripts off, then build the binding with
# npm's own node-gyp against Debian's libzmq and node's installed headers
# (--nodedir: no header download either).
hkube_node="${DK_HKUBE_NODEJS:-$HOME/.cache/distributedkube/hkube-nodejs-wrapper}"
if ! (cd "$hkube_node" 2>/dev/null && node -e "require('@hkube/nodejs-wrapper'); process.exit(0)") 2>/dev/null; then
  echo "installing @hkube/nodejs-wrapper 2.1.3 into $hkube_node"
  rm -rf "$hkube_node"
  mkdir -p "$hkube_node"
  (
    cd "$hkube_node"
    echo '{"name": "hkube-nodejs-wrapper-tests", "private": true}' > package.json
    npm install -q --ignore-scripts --no-audit --no-fund @hkube/nodejs-wrapper@2.1.3
    nodedir="$(dirname "$(dirname "$(command -v node)")")"
    gyp="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")/node_modules/node-gyp/bin/node-gyp.js"
    (cd node_modules/zeromq && node "$gyp" rebuild --nodedir="$nodedir" --zmq_external=true >/dev/null)
    node -e "require('@hkube/nodejs-wrapper'); process.exit(0)"
  )
fi

# debugpy, so `distributedkubectl debug --inspect` is tested under the real
# Python debugger (without it the test checks the "pip install debugpy" message).
if ! python3 -c 'import debugpy' 2>/dev/null; then
  echo "installing debugpy for $(command -v python3)"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q debugpy || echo "debugpy could not be installed; the --inspect test will check the install hint instead" >&2
fi

# The dashboard's packages, from its package-lock.json: esbuild (the bundle
# check) and playwright-core (the browser tests). No install scripts: esbuild
# comes with its binary as a platform package.
lock="dashboard/package-lock.json"
if ! cmp -s "$lock" dashboard/node_modules/.installed-lock 2>/dev/null; then
  echo "installing the dashboard's npm packages"
  (cd dashboard && npm ci -q --ignore-scripts --no-audit --no-fund)
  cp "$lock" dashboard/node_modules/.installed-lock
fi
