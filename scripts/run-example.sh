#!/usr/bin/env bash
# The main job on a fresh machine: set up, place the real datasets, run the reference solutions
# end to end (printing their results table), then grade the bundled example submission.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
venv="${DLGRADE_VENV:-.venv}"
"$venv/bin/dlgrade" data
"$venv/bin/dlgrade" reference
"$venv/bin/dlgrade" grade fixtures/submissions/all_correct --out grading-output
