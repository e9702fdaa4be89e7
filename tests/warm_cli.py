"""`cnnkit` commands as real processes without a fresh interpreter's import time, for the tests that start many.

Each command still runs in a process of its own: its own pid, killed by SIGKILL or ended by SIGTERM as a user's
would be, with its own stdout, stderr, working folder, environment and exit status. What it skips is the 10 to 15 s
a fresh ``python -m cnnkit.cli`` spends importing torch, torchvision, Lightning and timm on a 2-core machine: each
pytest worker keeps one server process that imported every ``cnnkit`` module once, without computing anything (so
that forking it is safe: no thread pool exists yet), and forks it for each command. The child runs the command as
``python -m cnnkit.cli`` does (``runpy``, the module as ``__main__``) and exits through the interpreter's normal
shutdown, atexit handlers included.

:func:`run` is :func:`subprocess.run` for a command (``capture_output=True, text=True``); :func:`start` is
:class:`subprocess.Popen` with both outputs piped. Tests that check what a fresh process imports, or how long it
takes to start, must keep using a real interpreter.
"""

from __future__ import annotations

import array
import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_server: tuple[subprocess.Popen, str] | None = None
_lock = threading.Lock()


# -- the server (its own process) --------------------------------------------------------------------------------


def _preload() -> None:
    """Import every cnnkit module (each pulls in its heavy libraries), computing nothing."""
    import importlib
    import pkgutil

    import cnnkit

    for module in pkgutil.walk_packages(cnnkit.__path__, "cnnkit."):
        if module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    fds = array.array("i")
    message, ancillary, _, _ = connection.recvmsg(1 << 20, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return json.loads(message), list(fds)


def serve(path: str) -> None:
    """Accept commands on the Unix socket ``path`` and fork a child for each; report each child's pid, then its exit
    status, on the command's connection. Returns only in a child, which then runs its command."""
    _preload()
    import gc

    gc.freeze()  # the imported modules' objects stay out of the children's collections (and their pages shared)
    if threading.active_count() != 1:
        raise SystemExit(f"warm_cli: importing cnnkit started {threading.active_count() - 1} thread(s); "
                         "forking would not be safe")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    listener.settimeout(0.02)
    children: dict[int, socket.socket] = {}
    while True:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            connection = None
        except OSError:
            return os._exit(0)
        if connection is not None:
            connection.settimeout(None)
            request, fds = _receive(connection)
            pid = os.fork()
            if pid == 0:
                listener.close()
                connection.close()
                for other in children.values():
                    other.close()
                _become(request, fds)
                return _run(request)
            for fd in fds:
                os.close(fd)
            connection.sendall(f"{pid}\n".encode())
            children[pid] = connection
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            connection = children.pop(pid, None)
            if connection is not None:
                try:
                    connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:
                    pass
                connection.close()
        if os.getppid() == 1:  # the pytest worker is gone
            os._exit(0)


def _become(request: dict, fds: list[int]) -> None:
    """Turn the forked child into the process a fresh ``python -m cnnkit.cli ARGS`` started with these pipes,
    folder and environment would be."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as CPython sets it at start-up
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = os.getcwd()  # what `python -m` puts first
    import random

    import numpy as np

    random.seed()  # a fresh interpreter's generators are seeded from the OS, not inherited
    np.random.seed()


def _run(request: dict) -> None:
    """Run the command as ``python -m cnnkit.cli`` would, then end as the interpreter does (atexit handlers, flushed
    output, the exit status) without finalising every module one by one: in a child of a process that imported all
    of cnnkit, that alone took 3.7 s, more than the commands the tests run."""
    import atexit
    import runpy
    import traceback

    sys.argv = [str(Path(sys.modules["cnnkit.cli"].__file__).parent / "__main__.py"), *request["args"]]
    code = 0
    try:
        runpy.run_module("cnnkit.cli", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:  # as CPython ends on an uncaught KeyboardInterrupt: killed by SIGINT
        code = -signal.SIGINT
    except BaseException:  # noqa: BLE001 - as the interpreter reports an uncaught exception
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    if code == -signal.SIGINT:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


# -- the client (the pytest worker) ------------------------------------------------------------------------------


def _server_path() -> str:
    global _server
    with _lock:
        if _server is not None and _server[0].poll() is None:
            return _server[1]
        folder = tempfile.mkdtemp(prefix="cnnkit-warm-")
        path = os.path.join(folder, "socket")
        log = open(os.path.join(folder, "server.log"), "wb")  # noqa: SIM115 - the server's, for as long as it runs
        server = subprocess.Popen([sys.executable, "-c", f"from tests.warm_cli import serve; serve({path!r})"],
                                  cwd=_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 300
        while not os.path.exists(path):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"the warm cnnkit server did not start: {Path(log.name).read_text()[-2000:]}")
            time.sleep(0.05)
        atexit.register(server.kill)
        _server = (server, path)
        return path


class WarmProcess:
    """The parts of :class:`subprocess.Popen` the tests use, for a command forked from the warm server."""

    def __init__(self, args: list[str], env: dict | None = None, cwd: str | Path | None = None):
        self.args = ["cnnkit", *args]
        self.returncode: int | None = None
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        stdin = os.open(os.devnull, os.O_RDONLY)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.connect(_server_path())
        request = {"args": args, "cwd": str(cwd or os.getcwd()), "env": dict(os.environ if env is None else env)}
        self._socket.sendmsg([json.dumps(request).encode()],
                           [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [stdin, out_write, err_write]))])
        for fd in (stdin, out_write, err_write):
            os.close(fd)
        self.stdout = open(out_read, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by communicate
        self.stderr = open(err_read, encoding="utf-8", errors="replace")  # noqa: SIM115
        self._buffer = b""
        self.pid = int(self._line(None))

    def _line(self, timeout: float | None) -> str | None:
        """The server's next line, or None when none came within ``timeout`` seconds (0: do not wait)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._socket.settimeout(left)
            try:
                chunk = self._socket.recv(4096)
            except (TimeoutError, BlockingIOError):
                return None
            if not chunk:
                raise RuntimeError("the warm cnnkit server ended before the command")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def poll(self) -> int | None:
        if self.returncode is None:
            line = self._line(0)
            if line is not None:
                self.returncode = int(line)
                self._socket.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
            self.returncode = int(line)
            self._socket.close()
        return self.returncode

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        outputs = {}

        def read(name: str) -> None:
            with getattr(self, name) as stream:
                outputs[name] = stream.read()

        readers = [threading.Thread(target=read, args=(name,), daemon=True) for name in ("stdout", "stderr")]
        for reader in readers:
            reader.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        for reader in readers:
            reader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout)
        self.wait(None if deadline is None else max(0.1, deadline - time.monotonic()))
        return outputs["stdout"], outputs["stderr"]

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def start(*args, env: dict | None = None, cwd: str | Path | None = None) -> WarmProcess:
    return WarmProcess([str(a) for a in args], env=env, cwd=cwd)


def run(*args, env: dict | None = None, cwd: str | Path | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess:
    process = start(*args, env=env, cwd=cwd)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
