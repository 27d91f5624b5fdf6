"""Kernel bootstrap: run as ``python -I -c <this file's source> CONFIG_JSON -f CONNECTION_FILE``.

It is the first code of the kernel process, before any student code: it applies the resource
limits, hides the grader's own packages, then becomes an ordinary IPython kernel. It is passed
as source (not imported) so that the kernel never has ``graders`` on its import path.
Standard library only.
"""

import contextlib
import json
import os
import resource
import sys


def _limit(name: str, value: int) -> None:
    which = getattr(resource, name, None)
    if which is None or value <= 0:
        return
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    # A limit the system refuses is left unset: the kernel still runs, and docs/engine.md says
    # which limits hold in which mode.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(which, (value, value))


def _hide_grader(hidden_roots: list[str], hidden_packages: list[str]) -> None:
    """Drop the grader's source root and editable-install mappings from the import system.

    Exact folders only: the virtual environment may live inside the project folder and must stay.
    """
    roots = {os.path.realpath(r) for r in hidden_roots}
    sys.path[:] = [p for p in sys.path if not (p and os.path.realpath(p) in roots)]
    for finder in sys.meta_path:
        module = sys.modules.get(getattr(finder, "__module__", "") or "")
        mapping = getattr(module, "MAPPING", None)  # setuptools' editable-install finder
        if isinstance(mapping, dict):
            for pkg in hidden_packages:
                mapping.pop(pkg, None)
    for pkg in hidden_packages:
        sys.modules.pop(pkg, None)


def _main() -> None:
    config = json.loads(sys.argv[1])
    for name, value in config.get("rlimits", {}).items():
        _limit(name, int(value))
    os.umask(0o077)
    os.chdir(config["cwd"])
    _hide_grader(config.get("hidden_roots", []), config.get("hidden_packages", []))
    sys.argv = ["ipykernel_launcher", *sys.argv[2:]]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


_main()
