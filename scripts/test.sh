#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up, place the real data, lint, type-check, test.
# Extra arguments go to pytest (e.g. `scripts/test.sh -m "not slow"` for the fast part).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# Headless Chromium for the HTML report test (Debian's package; root on CI and dev machines).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
    || echo "test.sh: could not install chromium; the browser test will say it is skipped" >&2
fi
venv="${DLGRADE_VENV:-.venv}"
"$venv/bin/dlgrade" data
"$venv/bin/ruff" check .
"$venv/bin/mypy"
"$venv/bin/lint-imports"  # the import contracts in pyproject.toml: no cycles, kernel code apart
# Workers: a run that leaves the slow tests out (the developer loop, `-m "not slow"`) takes two
# at a time (pytest-xdist; its tests start kernels and wait on them, so two fit on 2 cores);
# anything else, CI's whole suite included, one at a time: the slow tests train models under
# cell and total time limits that a second test on the same cores would eat into.
# DLGRADE_TEST_WORKERS overrides either (0: no workers).
workers="${DLGRADE_TEST_WORKERS:-}"
if [ -z "$workers" ]; then
  workers=0
  for arg in "$@"; do
    case "$arg" in *"not slow"*) workers=2 ;; esac
  done
fi
set +e
"$venv/bin/python" -m pytest -n "$workers" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
