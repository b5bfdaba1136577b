#!/usr/bin/env bash
# Builds the installable collection stratus.cloud (`make collection`):
#   scripts/build-collection.sh [OUTPUT_DIR]      (default: dist/)
# The roles install the `stratus` Python package on every host. From a checkout they
# tar up pyproject.toml and src/; an installed collection has no src/, so this script
# puts the same deterministic source tarball into roles/common/files/stratus-src.tar.gz
# of a temporary copy of the collection and runs `ansible-galaxy collection build` there.
# The repository itself is never written to (no built artifact in the work tree).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/dist}"
galaxy="${ANSIBLE_GALAXY:-ansible-galaxy}"
if [ -x "$root/.venv/bin/ansible-galaxy" ] && [ -z "${ANSIBLE_GALAXY:-}" ]; then
  galaxy="$root/.venv/bin/ansible-galaxy"
fi

mkdir -p "$out"
out="$(cd "$out" && pwd)"
stage="$(mktemp -d "${TMPDIR:-/tmp}/stratus-collection.XXXXXX")"
trap 'rm -rf "$stage"' EXIT

cd "$root"
# The collection's files: what git tracks (as they are in the work tree now), or
# everything when this is not a git checkout (galaxy.yml's build_ignore trims it).
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$root" ls-files -z | tar --null --ignore-failed-read -T - -cf - 2>/dev/null \
    | tar -xf - -C "$stage"
else
  tar --exclude=./.venv --exclude=./.git --exclude=./dist -cf - . | tar -xf - -C "$stage"
fi

# The same deterministic tarball roles/common builds from a checkout (same names,
# times and owners), so a deploy from the collection and one from the checkout
# install the same bytes.
mkdir -p "$stage/roles/common/files"
files="pyproject.toml src"
for extra in README.md LICENSE setup.cfg; do
  if [ -e "$extra" ]; then files="$files $extra"; fi
done
# shellcheck disable=SC2086
tar --sort=name --mtime=@946684800 --owner=0 --group=0 --numeric-owner \
    --mode='u+rwX,go+rX,go-w' \
    --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
    -cf - $files | gzip -n -9 > "$stage/roles/common/files/stratus-src.tar.gz"

"$galaxy" collection build --force --output-path "$out" "$stage"
