#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04 by
# default), with the zip unpacked in /autograder/source. Package registries only (apt, pip,
# npm): no other downloads.
#   - a virtual environment at /autograder/venv with the pinned dependencies (requirements.txt)
#     but NOT the grader itself: the grader runs from /autograder/source/dlgrade, which only
#     root can read, so student code (run as an unprivileged uid) cannot read the rubric,
#     the hidden tests or the reference solutions;
#   - the real MNIST and Fashion-MNIST at /autograder/data (`dlgrade data`: npm and apt);
#   - bubblewrap, the sandbox every kernel runs in where the container allows user namespaces
#     (where it does not, each kernel runs as an unprivileged uid of its own; the grader says
#     which in every report).
# Set DLGRADE_TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu) to take torch from
# another pip index, and DLGRADE_DATA_SOURCE to a folder already holding the IDX files to copy
# the datasets from there instead of the registries (the tests do; nothing is downloaded).
set -euo pipefail
root="${DLGRADE_AUTOGRADER_ROOT:-/autograder}"
src="$root/source"
export DEBIAN_FRONTEND=noninteractive

# The system's Python (apt's), never one under a home folder such as pyenv's: the student's
# kernel runs this interpreter as the unprivileged user, who cannot enter /root.
python=/usr/bin/python3.11
# Only what the image lacks: a base image (or a test machine) that has them needs no apt.
if ! { "$python" -c "import ensurepip, venv" && command -v npm && command -v dpkg-deb \
       && command -v bwrap; } >/dev/null 2>&1; then
  apt-get update
  apt-get install -y --no-install-recommends \
    python3.11 python3.11-venv ca-certificates npm dpkg bubblewrap
fi

"$python" -m venv "$root/venv"
pip=("$root/venv/bin/python" -m pip install --disable-pip-version-check)
"${pip[@]}" --upgrade pip
if [ -n "${DLGRADE_TORCH_INDEX:-}" ]; then
  # torch and torchvision alone from that index (same pinned versions), the rest from PyPI.
  mapfile -t torch_pins < <(grep -E '^(torch|torchvision)==' "$src/requirements.txt")
  "${pip[@]}" --index-url "$DLGRADE_TORCH_INDEX" "${torch_pins[@]}"
fi
"${pip[@]}" -r "$src/requirements.txt"
# The kernel runs this Python as the unprivileged user: it must read the interpreter and packages.
chmod -R a+rX "$root/venv"

data_args=(--root "$root/data")
if [ -n "${DLGRADE_DATA_SOURCE:-}" ]; then data_args+=(--source "$DLGRADE_DATA_SOURCE"); fi
PYTHONPATH="$src/dlgrade" "$root/venv/bin/python" -m graders.cli data "${data_args[@]}"
chown -R root:root "$root/data"
chmod -R a+rX,go-w "$root/data"

# Root-only source (run_autograder redoes this before every run, in case it was changed).
PYTHONPATH="$src/dlgrade" "$root/venv/bin/python" -c \
  "from pathlib import Path; from graders.gradescope.bundle import secure_source; secure_source(Path('$root'))"
chmod 0755 "$root"
cp "$src/run_autograder" "$root/run_autograder"
chmod 0755 "$root/run_autograder"
