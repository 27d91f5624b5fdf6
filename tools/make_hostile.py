"""Write the hostile-submission fixtures of issue 8 under ``fixtures/hostile/``.

    python tools/make_hostile.py           # (re)write the committed fixtures
    python tools/make_hostile.py --check   # exit 1 if a committed fixture is stale

Each scenario is the correct Q2 notebook (the fastest to grade) with hostile code appended as
its last cell, so that whatever the engine contains, the rest of the notebook can still score.
Fixtures too large to commit (10,000 cells, a zip bomb) are made by the tests in tmp_path
with the functions below.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE = REPO_ROOT / "fixtures" / "submissions" / "all_correct" / "q2_initialization.ipynb"
HOSTILE = REPO_ROOT / "fixtures" / "hostile"
NOTEBOOK = "q2_initialization.ipynb"
FORK_MARKER = "dlgrade-hostile-fork-marker"
"""Command-line marker of the processes the fork fixture leaves behind (tests look for it)."""
PLANTED = "planted-by-student"

CELLS: dict[str, str] = {
    "infinite_loop": "while True:\n    pass\n",
    "sleep_past_total": "import time\n\ntime.sleep(100_000)\n",
    "memory_bomb": ("chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024 * 1024))\n"),
    "fork_children": (
        "import os\nimport subprocess\nimport sys\n\n"
        "# Children that leave the kernel's session and would run for an hour.\n"
        "for _ in range(8):\n"
        "    subprocess.Popen(\n"
        f"        [sys.executable, '-c', 'import time; time.sleep(3600)', {FORK_MARKER!r}],\n"
        "        start_new_session=True,\n"
        "    )\n"
    ),
    "fork_bomb": (
        "import os\nimport time\n\n"
        "# The kernel forks 4096 times and every child forks once more: thousands of processes\n"
        "# unless a limit stops them. The kernel's own fork must meet the limit, whatever order\n"
        "# the children run in; the copies sleep and exit, only the kernel returns from the cell.\n"
        "kernel = os.getpid()\n"
        "for _ in range(4096):\n"
        "    if os.fork() == 0:\n"
        "        try:\n"
        "            os.fork()\n"
        "        finally:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
    ),
    "big_output": ("line = 'x' * (1 << 20)\nfor _ in range(1024):  # 1 GiB\n    print(line)\n"),
    "disk_fill": (
        "block = b'\\0' * (1 << 20)\n"
        "with open('fill.bin', 'wb') as fh:\n"
        "    for _ in range(4096):  # 4 GiB, far past the file-size limit\n"
        "        fh.write(block)\n"
    ),
    "sys_exit": "import sys\n\nsys.exit(3)\n",
    "os_exit": "import os\n\nos._exit(1)\n",
    "kill_own_kernel": "import os\nimport signal\n\nos.kill(os.getpid(), signal.SIGKILL)\n",
    "exit_in_probed_function": (
        "import sys\n\n\n"
        "def forward_variance(n_in):\n"
        "    exit()\n\n\n"
        "def backward_variance(n_out):\n"
        "    sys.exit(0)\n"
    ),
    "os_exit_in_probed_function": ("import os\n\n\ndef forward_variance(n_in):\n    os._exit(0)\n"),
    "read_grader_files": (
        "import importlib.util\nimport json\nimport sys\nfrom pathlib import Path\n\n"
        "found = {m: importlib.util.find_spec(m) is not None"
        " for m in ('graders', 'reference', 'reports')}\n"
        "root = Path(sys.executable).resolve().parents[2]\n"
        "for rel in ('reference/q2_init.py', 'graders/config/thresholds.toml',"
        " 'graders/config/rubric.toml'):\n"
        "    try:\n"
        "        found[rel] = len((root / rel).read_text())\n"
        "    except OSError as exc:\n"
        "        found[rel] = type(exc).__name__\n"
        "print('LEAKCHECK ' + json.dumps(found))\n"
    ),
    "plant_results": (
        "import json\nimport subprocess\nimport sys\nfrom pathlib import Path\n\n"
        "# A student who guessed the results folder (the test injects it as OUT_GUESS).\n"
        "target = Path(OUT_GUESS)\n"
        f"fake = json.dumps({{'score': 999, 'note': {PLANTED!r}}})\n"
        "for folder in (target / 'plant_results', target / 'other', Path.cwd().parent):\n"
        "    try:\n"
        "        folder.mkdir(parents=True, exist_ok=True)\n"
        "        (folder / 'result.json').write_text(fake)\n"
        "    except OSError:\n"
        "        pass\n"
        "# and a child that outlives the cell to plant again after the grader has written\n"
        "later = (\n"
        "    'import pathlib, time\\n'\n"
        "    'for _ in range(300):\\n'\n"
        "    '    time.sleep(0.1)\\n'\n"
        "    f'    for p in pathlib.Path({str(target)!r}).rglob(\"result.json\"):\\n'\n"
        "    f'        p.write_text({fake!r})\\n'\n"
        ")\n"
        f"marker = {FORK_MARKER!r}\n"
        "subprocess.Popen([sys.executable, '-c', later, marker], start_new_session=True)\n"
    ),
    "monkeypatch": (
        "import builtins\nimport json\n\nimport numpy as np\n\n"
        "np.allclose = lambda *a, **k: True\n"
        "np.isclose = lambda *a, **k: True\n"
        "np.asarray = lambda *a, **k: np.array(1.0)\n"
        "_dump = json.dump\n\n\n"
        "def _forged(obj, fh, *a, **k):\n"
        "    return _dump({'everything': 'passes', 'score': 999}, fh)\n\n\n"
        "json.dump = _forged\n"
        "builtins.print = lambda *a, **k: None\n\n\n"
        "def xavier_variance(n_in, n_out):\n"
        "    return 1.0 / (n_in + n_out)\n"
    ),
    "network": (
        "import socket\n\n"
        "# NET_PORT: a port the grader's side listens on (the test injects it).\n"
        "with socket.create_connection(('127.0.0.1', NET_PORT), timeout=3) as s:\n"
        "    s.sendall(b'leaked')\n"
    ),
}
"""Scenario name -> the hostile cell appended to the correct Q2 notebook."""


def hostile_notebook(cell: str) -> nbformat.NotebookNode:
    nb = nbformat.read(str(SOURCE), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(cell, id="hostile-cell"))
    return nb


def write_many_cells(path: Path, count: int = 10_000) -> Path:
    nb = nbformat.read(str(SOURCE), as_version=4)
    nb.cells.extend(nbformat.v4.new_code_cell(f"x_{i} = {i}") for i in range(count))
    nbformat.write(nb, str(path))
    return path


def write_zip_bomb(path: Path, unpacked_mib: int = 256) -> Path:
    """One entry of zeros that unpacks to ``unpacked_mib`` MiB (a few hundred KiB packed)."""
    block = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("q2_bomb.ipynb", "w") as f:
        for _ in range(unpacked_mib):
            f.write(block)
    return path


def write_zip_slip(path: Path) -> Path:
    """A zip with ``..`` and absolute entries beside a good Q2 notebook."""
    good = SOURCE.read_text(encoding="utf-8")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"sub/{NOTEBOOK}", good)
        zf.writestr(f"../../escaped-{PLANTED}.ipynb", good)
        zf.writestr(f"/tmp/absolute-{PLANTED}.ipynb", good)
    return path


def _files() -> dict[Path, str]:
    """Every committed fixture file and its exact text."""
    files: dict[Path, str] = {}
    for name, cell in CELLS.items():
        files[HOSTILE / name / NOTEBOOK] = nbformat.writes(hostile_notebook(cell)) + "\n"
    good = SOURCE.read_text(encoding="utf-8")
    files[HOSTILE / "load_not_json" / NOTEBOOK] = "this is not a notebook {\n"
    files[HOSTILE / "load_empty" / NOTEBOOK] = ""
    v3 = nbformat.v3.new_notebook(
        worksheets=[
            nbformat.v3.new_worksheet(
                cells=[
                    nbformat.v3.new_code_cell(input=c.source)
                    for c in nbformat.read(str(SOURCE), as_version=4).cells
                    if c.cell_type == "code"
                ]
            )
        ]
    )
    files[HOSTILE / "load_nbformat3" / NOTEBOOK] = nbformat.v3.writes_json(v3) + "\n"
    files[HOSTILE / "load_odd_names" / "q2 init (copy) ü 😀 $(echo pwned) ;'\".ipynb"] = good
    files[HOSTILE / "load_wrong_slot" / "q1_step_network.ipynb"] = good
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a fixture is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in _files().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(REPO_ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
