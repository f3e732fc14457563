#!/usr/bin/env bash
# Install what `make test` and `make demo` need on a fresh machine; safe to run again.
#   - Debian packages (rsync, openssh server and client, shellcheck, postgresql, chromium) when run as root
#   - .venv: Python >= 3.11 with requirements.txt + test-requirements.txt
#   - .venv-mongo: Python >= 3.13 with mongoeco[wire], the test stack's second MongoDB wire server
#   - .venv-neptune-scale: neptune-scale, which writes the offline stores the neptune_scale reader is tested
#     against (its protobuf pin would hold back the one wandb needs in .venv)
#   - the test stack's servers built from the registries (FerretDB, MinIO, s5cmd, OpenSearch):
#     scripts/build-servers.sh, once per version, into .build/servers
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
MONGO_VENV=${MONGO_VENV:-.venv-mongo}
NEPTUNE_SCALE_VENV=${NEPTUNE_SCALE_VENV:-.venv-neptune-scale}

log() { printf '[install-deps] %s\n' "$*" >&2; }

missing=()
command -v rsync >/dev/null || missing+=(rsync)
command -v ssh >/dev/null || missing+=(openssh-client)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v shellcheck >/dev/null || missing+=(shellcheck)  # for ansible-test sanity
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)  # the test stack's PostgreSQL
command -v chromium >/dev/null || missing+=(chromium)  # renders report.html headless in the report test
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing system packages: ${missing[*]} (install them, or run as root so this script can)"
    exit 1
  fi
fi

# The first interpreter on PATH or under pyenv that is at least the given version.
find_python() {
  local want=$1 candidate
  for candidate in python3 python3.11 python3.12 python3.13 python3.14 \
      "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[1-9]*/bin/python3; do
    command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ] || continue
    if "$candidate" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$want'.split('.'))))" 2>/dev/null; then
      command -v "$candidate" 2>/dev/null || echo "$candidate"
      return 0
    fi
  done
  return 1
}

# Install a requirements set into a venv once; the stamp names the hash of what was asked for.
install_into() {
  local venv=$1 python=$2 stamp; shift 2
  [ -x "$venv/bin/python" ] || { log "creating $venv with $python"; "$python" -m venv "$venv"; }
  stamp="$venv/.installed-$(printf '%s\n' "$@" | cat - "${REQ_FILES[@]}" 2>/dev/null | md5sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    log "installing into $venv: $*"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q "$@"
    rm -f "$venv"/.installed-*
    touch "$stamp"
  fi
}

py311=$(find_python 3.11) || { log "no Python >= 3.11 found"; exit 1; }
REQ_FILES=(requirements.txt test-requirements.txt)
install_into "$VENV" "$py311" -r requirements.txt -r test-requirements.txt

py313=$(find_python 3.13) || { log "no Python >= 3.13 found for the MongoDB wire server (pyenv install 3.13)"; exit 1; }
REQ_FILES=()
install_into "$MONGO_VENV" "$py313" "mongoeco[wire]>=4.11,<5"
install_into "$NEPTUNE_SCALE_VENV" "$py311" "neptune-scale>=0.30,<1"

bash scripts/build-servers.sh

# Ansible finds the collection under .build/collections (see ansible.cfg).
mkdir -p .build/collections/ansible_collections/mlops
ln -sfn ../../../.. .build/collections/ansible_collections/mlops/migration
log "ready: $VENV, $MONGO_VENV, $NEPTUNE_SCALE_VENV, .build/collections"

# ansible-test bootstraps pip in its sanity venvs with a get-pip.py it downloads from a
# host outside the package registries; give it the offline stand-in under the name it looks for.
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',*$/\1/p" \
  "$VENV"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n 1)
if [ -n "$pip_version" ]; then
  cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
  mkdir -p "$(dirname "$cache")"
  cmp -s scripts/ansible_test_get_pip.py "$cache" 2>/dev/null || cp scripts/ansible_test_get_pip.py "$cache"
fi
