"""Running the real `gatewayz` command as a subprocess, the way an operator does.

Every process started here runs in its own session (process group), so `stop()` ends the
server and every worker it spawned, and nothing else. Output goes to files, never to pipes, so
a chatty server can never block on a full pipe."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from cryptography.fernet import Fernet

from gatewayz.settings import PROVIDERS_FILE

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 30.0
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def gatewayz_command() -> list[str]:
    """The venv's `gatewayz` script (what `make run` runs), else the module entry point."""
    script = Path(sys.executable).with_name("gatewayz")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "gatewayz.cli.main"]


def provider_env_vars() -> set[str]:
    """Every conventional provider variable (OPENAI_API_KEY, CLOUDFLARE_ACCOUNT_ID, ...)."""
    with PROVIDERS_FILE.open("rb") as f:
        entries = tomllib.load(f)["providers"]
    names: set[str] = set()
    for entry in entries.values():
        if entry.get("key_env"):
            names.add(entry["key_env"])
        names.update(entry.get("env_vars", []))
    return names


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any GATEWAYZ_*, provider or proxy variable (a
    zero-config run that only talks to loopback), plus `extra`."""
    scrub = provider_env_vars()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAYZ_") and k not in scrub and k.upper() not in _PROXY_VARS
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def production_env(
    postgres_url: str, redis_url: str, redis_prefix: str, upstream_url: str, model: str, data: Path
) -> dict[str, str]:
    """The production configuration: PostgreSQL, Redis, and the simulator as a `vllm` provider
    serving `model`. Several workers (and hosts) must share the key material: set explicitly."""
    return clean_env(
        GATEWAYZ_DATABASE_URL=postgres_url,
        GATEWAYZ_REDIS_URL=redis_url,
        GATEWAYZ_REDIS_KEY_PREFIX=redis_prefix,
        GATEWAYZ_PROVIDER_VLLM_BASE_URL=upstream_url,
        GATEWAYZ_PROVIDER_VLLM_MODELS=model,
        GATEWAYZ_FERNET_KEY=Fernet.generate_key().decode(),
        GATEWAYZ_HMAC_KEY=secrets.token_urlsafe(48),
        GATEWAYZ_DATA_DIR=str(data),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def run_cli(
    args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """`gatewayz <args>` to completion. If it outlives `timeout`, it and everything it started
    are killed and `subprocess.TimeoutExpired` is raised."""
    proc = subprocess.Popen(
        [*gatewayz_command(), *args],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=STOP_TIMEOUT_S)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@dataclass
class Server:
    """A `gatewayz serve` process (and its workers)."""

    proc: subprocess.Popen[bytes]
    port: int
    log_dir: Path
    stdout_path: Path = field(init=False)
    stderr_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.stdout_path = self.log_dir / "stdout.txt"
        self.stderr_path = self.log_dir / "stderr.txt"

    @property
    def root(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    def wait_ready(self, workers: int = 1, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Until GET /health answers and every worker has started; fails at once if the
        process exits first."""
        deadline = time.monotonic() + timeout
        with httpx2.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"gatewayz serve exited with {self.proc.returncode}\n{self.output()}"
                    )
                started = self.stderr.count("Application startup complete.")
                with contextlib.suppress(httpx2.TransportError):
                    if started >= workers and client.get(f"{self.root}/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"gatewayz serve not ready in {timeout}s\n{self.output()}")
                time.sleep(0.05)

    def children(self) -> set[int]:
        """PIDs of every live descendant of the server process (its workers)."""
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
            parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
        found: set[int] = set()
        frontier = {self.proc.pid}
        while frontier:
            frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
            found |= frontier
        return found

    def stop(self) -> int | None:
        """SIGINT (Ctrl+C, what an operator does) to the whole group, then SIGKILL."""
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(STOP_TIMEOUT_S)
        # Workers too, even if the parent is gone already.
        _signal_group(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(STOP_TIMEOUT_S)
        return self.proc.returncode


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@contextlib.contextmanager
def serve(
    env: Mapping[str, str], cwd: Path, log_dir: Path, *extra_args: str, workers: int = 1
) -> Iterator[Server]:
    """`gatewayz serve --port <free> [--workers N] [extra_args]`, ready (every worker started);
    stopped (the whole process group) on exit, whatever happened."""
    if workers != 1:
        extra_args = ("--workers", str(workers), *extra_args)
    log_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(PORT_ATTEMPTS):
        # The free port may be taken before the server binds it (by a parallel test's
        # outgoing connection): then it exits with EADDRINUSE and we try another one.
        server = _spawn(env, cwd, log_dir, free_port(), extra_args)
        try:
            server.wait_ready(workers)
        except AssertionError:
            server.stop()
            if "address already in use" in server.stderr and attempt + 1 < PORT_ATTEMPTS:
                continue
            raise
        break
    try:
        yield server
    finally:
        server.stop()


PORT_ATTEMPTS = 3


def _spawn(
    env: Mapping[str, str], cwd: Path, log_dir: Path, port: int, extra_args: tuple[str, ...]
) -> Server:
    with (log_dir / "stdout.txt").open("wb") as out, (log_dir / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [*gatewayz_command(), "serve", "--port", str(port), *extra_args],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return Server(proc, port, log_dir)


# ---- which process holds a TCP connection -----------------------------------------------


def _tcp_inode(local_port: int, remote_port: int) -> int | None:
    """The socket inode of the IPv4 connection local_port <-> remote_port, if any."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, remote, inode = parts[1], parts[2], int(parts[9])
            if int(local.split(":")[1], 16) == local_port and (
                int(remote.split(":")[1], 16) == remote_port
            ):
                return inode
    return None


def connection_owner(server_port: int, client_port: int, pids: set[int]) -> int | None:
    """Which of `pids` holds the server side of the loopback connection from `client_port`."""
    inode = _tcp_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
    return None
