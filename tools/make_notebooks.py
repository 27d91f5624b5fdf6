"""Generate the student template notebooks and the two fixture submissions from one source.

    python tools/make_notebooks.py            # (re)write all notebooks
    python tools/make_notebooks.py --check    # exit 1 if any committed notebook is stale

The source is ``tools/notebooks/`` (one module per question); this file is only the command
that the docs and the tests run, kept at its old path.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.notebooks.builder import main

if __name__ == "__main__":
    sys.exit(main())
