"""Grade a full correct submission in a Gradescope image, without limits and inside
Gradescope's default container limits (768 MB, 0.5 vCPU), side by side in one run.

Root only (setup.sh, cgroups). Builds the zip, runs its setup.sh into a temporary root (datasets
copied from this project's data root), then alternates the two variants ``--repeats`` times,
dropping the page cache before each so that both start cold, as a new container does.

    sudo .venv/bin/python benchmarks/bench_gradescope_limits.py --repeats 2   # docs/gradescope.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from graders.config import PROJECT_ROOT
from graders.data import default_data_root
from graders.gradescope import image as gradescope_image
from graders.gradescope.bundle import build_bundle

NOTEBOOKS = PROJECT_ROOT / "fixtures" / "submissions" / "all_correct"
TEN_MINUTES = 600.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--profile", default=None, help="bundle profile (default: the bundle's)")
    args = parser.parse_args()
    reason = gradescope_image.why_no_setup()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    made = Path(tempfile.mkdtemp(prefix="dlgrade-gs-bench-"))
    made.chmod(0o755)
    root = made / "autograder"
    try:
        zip_path = build_bundle(made / "autograder.zip", **_profile(args.profile))
        gradescope_image.unpack(zip_path, root)
        print("setup.sh ...", flush=True)
        gradescope_image.run_setup(root, data_source=default_data_root())
        for notebook in NOTEBOOKS.glob("*.ipynb"):
            shutil.copyfile(notebook, root / "submission" / notebook.name)
        variants = {
            "no limits": gradescope_image.Limits(),
            "768 MB, 0.5 vCPU": gradescope_image.GRADESCOPE_DEFAULTS,
        }
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for repeat in range(args.repeats):
            for name, limits in variants.items():
                gradescope_image.drop_page_cache()
                run = gradescope_image.run_autograder(root, limits)
                results = json.loads((root / "results" / "results.json").read_text())
                extra = results.get("extra_data", {})
                seconds[name].append(run.seconds)
                print(
                    f"[{repeat + 1}] {name:<17} {run.seconds:6.1f} s  score "
                    f"{results['score']:g}/{extra.get('max_score')}  oom kills {run.oom_kills}  "
                    f"container peak {extra.get('container_memory_mb')}  "
                    f"per-process peaks {extra.get('peak_rss_mb')}  run as {extra.get('run_as')}",
                    flush=True,
                )
        free, limited = (statistics.median(seconds[name]) for name in variants)
        print(
            f"median: no limits {free:.1f} s, Gradescope defaults {limited:.1f} s "
            f"({limited / free:.2f}x; {limited / TEN_MINUTES:.0%} of the 10-minute limit)"
        )
    finally:
        shutil.rmtree(made, ignore_errors=True)
    return 0


def _profile(name: str | None) -> dict[str, str]:
    return {"profile": name} if name else {}


if __name__ == "__main__":
    sys.exit(main())
