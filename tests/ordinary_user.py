"""Run a command as an unprivileged account, with this project and its Python readable to it.

CI runs as root, and the project's virtual environment is usually made from a Python under
``/root`` (pyenv), which no other account can enter. So the command runs in a private mount
namespace (``unshare -m``, root only, gone with the command) where every folder on the way to
the project, its data and its Python that the account could not traverse is covered by an
empty 0755 tmpfs with just the needed paths bound back in, at the same places. Nothing else
changes: the account has no capability, the grader it runs is the same code, and what it
reads is what it could read if the files were installed for everyone.

Run as a script (``python tests/ordinary_user.py ACCOUNT -- COMMAND...``) by
``test_as_ordinary_user.py``; it needs root, ``unshare``, ``mount`` and ``setpriv``.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import tempfile
from pathlib import Path


def _traversable(folder: Path) -> bool:
    """Whether any account may pass through ``folder`` (others' execute bit)."""
    return bool(folder.stat().st_mode & stat.S_IXOTH)


def _blocking_ancestor(path: Path) -> Path | None:
    """The outermost folder on the way to ``path`` that others cannot pass, if any."""
    for folder in [*reversed(path.parents), path]:
        if folder.is_dir() and not _traversable(folder):
            return folder
    return None


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def expose(paths: list[Path]) -> None:
    """In this (private) mount namespace, make each of ``paths`` reachable for everyone.

    Each blocking folder is staged once (a bind of its real content elsewhere), covered by a
    tmpfs, and every needed path below it bound back from the stage.
    """
    wanted: dict[Path, list[Path]] = {}
    for path in (p.resolve() for p in paths):
        blocked = _blocking_ancestor(path)
        if blocked is not None:
            wanted.setdefault(blocked, []).append(path)
    for blocked, inside in wanted.items():
        stage = Path(tempfile.mkdtemp(prefix="dlgrade-expose-"))
        _mount("--bind", str(blocked), str(stage))
        _mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "tmpfs", str(blocked))
        for path in inside:
            inner = path.relative_to(blocked)
            if (stage / inner).is_dir():
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            _mount("--bind", str(stage / inner), str(path))


def main(argv: list[str]) -> int:
    account, separator, *command = argv
    assert separator == "--", "usage: ordinary_user.py ACCOUNT -- COMMAND..."
    entry = pwd.getpwnam(account)
    _mount("--make-rprivate", "/")
    needed = [Path(p) for p in os.environ.get("DLGRADE_EXPOSE", "").split(os.pathsep) if p]
    expose(needed)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": entry.pw_dir,
        "USER": account,
        "LOGNAME": account,
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith("DLGRADE_TEST_")})
    if "PYTHONPATH" in os.environ:  # a checkout run from a worktree beside its venv
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    setpriv = [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--init-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ]
    os.execvpe(setpriv[0], [*setpriv, *command], env)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
