#!/usr/bin/env bash
# Run `ansible-test sanity` on a copy of the collection at <tmp>/ansible_collections/mlops/migration
# (ansible-test needs that path, outside this checkout so its git view does not hide the copy).
# The copy holds the files git tracks plus untracked, unignored ones.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
repo=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/mlops-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest=$work/ansible_collections/mlops/migration
mkdir -p "$dest"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
  done | rsync -a --from0 --files-from=- . "$dest/"
else
  rsync -a --exclude='.venv*' --exclude=.build --exclude=.demo --exclude=.git . "$dest/"
fi
cd "$dest"
export PATH="$repo/$VENV/bin:$PATH"
python_version=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ansible-test sanity --python "$python_version" --color no "$@"
