#!/usr/bin/env bash
# Create .venv (once) and install the project with its dev tools; a no-op when nothing changed.
# torch/torchvision are pinned in pyproject.toml (2.14.1 / 0.29.1: a CUDA build that also runs
# on the CPU). Set DLGRADE_VENV to put the environment elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
# bubblewrap: the sandbox every student kernel runs in (Debian's package; root installs it).
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing bubblewrap (the sandbox student code runs in)"
    (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null) \
      || echo "bootstrap: could not install bubblewrap; see docs/security.md" >&2
  else
    echo "bootstrap: bubblewrap (bwrap) is not installed: grading will refuse to run student" \
         "code until it is (ask for \`apt-get install bubblewrap\`; see docs/security.md)" >&2
  fi
fi
venv="${DLGRADE_VENV:-.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
stamp="$venv/.dlgrade-installed"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
# The project's own bytecode, as a wheel install would have it: an editable install leaves it to
# the first import, which a PYTHONDONTWRITEBYTECODE environment never writes (then every
# `dlgrade` run compiles ~100 modules again, a quarter of a second). Up-to-date files are skipped.
compile_bytecode() {
  "$venv/bin/python" -m compileall -q -j 0 graders reference reports tools >/dev/null \
    || echo "bootstrap: could not compile the project's bytecode (it still runs, a little slower)" >&2
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  compile_bytecode
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv with $($python --version)"
  "$python" -m venv "$venv"
fi
echo "bootstrap: installing the project and its dependencies into $venv (torch is large: a few minutes the first time)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -c "import torch, torchvision, nbclient, graders, reference" \
  || { echo "bootstrap: the install did not complete; see the messages above" >&2; exit 1; }
echo "$want" > "$stamp"
compile_bytecode
