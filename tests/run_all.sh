#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run lint, types and tests.
# This is the README's test command, and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless)
[ -e /usr/share/java/zookeeper.jar ] || need_apt+=(zookeeper)
# Apache ZooKeeper's C client library and a compiler (tests/test_c_client.py)
[ -e /usr/include/zookeeper/zookeeper.h ] || need_apt+=(libzookeeper-mt-dev)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
ruff check impl tests
ruff format --check impl tests
echo "== mypy --strict"
mypy
mypy tests
echo "== pytest"
python3 -m pytest -q -p no:cacheprovider "$@"
