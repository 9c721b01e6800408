#!/usr/bin/env bash
# ansible-test sanity, offline and without docker.
# ansible-test needs the collection at a real path ending in ansible_collections/omr/deploy,
# and downloads a pip bootstrap script it cannot reach here: both are provided locally,
# under .build/, so nothing in the user's home is touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/.build
dest=$build/ansible_collections/omr/deploy
rm -rf "$dest"
mkdir -p "$dest" "$build/home/.ansible/test/cache"
# Only what git tracks (or would track): the same files a release would contain.
(cd "$root" && git ls-files -co --exclude-standard | grep -v '^\.ci/' | while read -r f; do [ -e "$f" ] && echo "$f"; done) > "$build/files.txt"
tar -C "$root" -cf - -T "$build/files.txt" | tar -C "$dest" -xf -
printf 'tests/output/\n' > "$dest/.gitignore"
# ansible-test pins a pip version and fetches get_pip_<ver>.py; stand in with ensurepip.
pipver=$(sed -n "s/^ *pip='\([0-9.]*\)',*$/\1/p" \
  "$root"/.venv/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1 | tr . _)
[ -n "$pipver" ] || { echo "cannot find ansible-test's pinned pip version" >&2; exit 1; }
cat > "$build/home/.ansible/test/cache/get_pip_${pipver}.py" <<'PY'
import subprocess, sys
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
PY
cd "$dest"
# A throwaway git repo so ansible-test lists exactly these files.
git init -q . && git config user.email ci@localhost && git config user.name ci
git add -A >/dev/null && git commit -qm sanity >/dev/null
HOME=$build/home "$root/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
