#!/usr/bin/env bash
# The collection's `ansible-test sanity`, the tests that work offline, with the
# empty ignore file tests/sanity/ignore-2.19.txt.
#
# ansible-test wants the collection at .../ansible_collections/stratus/cloud
# and resolves symlinks, so the collection's content (what `ansible-galaxy
# collection build` ships of the plugins: plugins/, meta/, galaxy.yml, the
# README and tests/sanity/) is copied into a temporary tree of that shape.
# Each sanity test runs in a virtualenv of ansible-test's own (under
# ~/.ansible/test/venv, made once, its packages from PyPI); ansible-test
# bootstraps pip into it with a get-pip script it would download from its
# CI host, which this machine cannot reach, so a stand-in made from the
# standard library's ensurepip is put in ansible-test's cache first.
#
# Usage: scripts/sanity.sh [more ansible-test sanity options]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(cd "${VENV:-$root/.venv}" && pwd)
python_version=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
tests=(action-plugin-docs ansible-doc compile empty-init import line-endings no-assert
       no-get-exception no-illegal-filenames no-smart-quotes pep8 replace-urlopen
       runtime-metadata shebang symlinks use-argspec-type-path use-compat-six validate-modules
       yamllint ignores)

# the pip version ansible-test bootstraps into its virtualenvs
pip_version=$("$venv/bin/python" -c 'import re, inspect
from ansible_test._internal import python_requirements as r
print(re.search(r"pip=.([0-9.]+).", inspect.getsource(r.get_venv_packages)).group(1))')
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
for version in $pip_version; do
  shim="$cache/get_pip_${version//./_}.py"
  # A real get-pip.py (downloaded by ansible-test where it can) is left alone.
  [ -e "$shim" ] && ! grep -q "Stand-in for get-pip.py" "$shim" && continue
  cat > "$shim" <<'PY'
"""Stand-in for get-pip.py (ansible-test's pip bootstrap): pip from ensurepip, then the
requested packages (pip==X and the like) from the package index."""
import ensurepip
import os
import subprocess
import sys

env = dict(os.environ)  # ensurepip hides pip's configuration from itself (PIP_CONFIG_FILE)
ensurepip.bootstrap(upgrade=True)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "-q", "--upgrade", *args], env=env))
PY
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/stratus/cloud"
mkdir -p "$dest/tests"
cd "$root"
cp -r plugins meta galaxy.yml README.md "$dest/"
cp -r tests/sanity "$dest/tests/"
find "$dest" -name __pycache__ -prune -exec rm -rf {} +

cd "$dest"
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
PATH="$venv/bin:$PATH" "$venv/bin/ansible-test" sanity --python "$python_version" --color no \
  "${args[@]}" "$@"
