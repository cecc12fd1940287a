"""Replica processes of the `local` provider: spawning, signalling, recognising them by /proc start time.

Processes run detached in their own session so they outlive the worker that started them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from automation.providers.base import ProviderError
from automation.providers.local.services_file import ServiceSpec

POLL_INTERVAL = 0.05
_KILL_WAIT = 10.0  # how long a SIGKILLed process may take to disappear before we give up

# Popen objects of the replicas this process started, kept so they are reaped (no zombies) and can
# report their exit code; replicas started by another (perhaps dead) worker are reaped by init.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_CHILDREN_LOCK = threading.Lock()


def reap_children() -> None:
    with _CHILDREN_LOCK:
        for pid, child in list(_CHILDREN.items()):
            if child.poll() is not None:
                del _CHILDREN[pid]


def exit_code(pid: int) -> int | None:
    child = _CHILDREN.get(pid)
    return None if child is None else child.poll()


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) from /proc, or None when the process does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


_HAS_PROC = Path("/proc/self/stat").exists()


@dataclass(frozen=True)
class ReplicaProcess:
    """What a PID file records: enough to recognise the process even after its PID is reused."""

    replica: int
    pid: int
    pgid: int
    start_time: int | None  # from /proc/PID/stat; None where /proc is missing
    port: int | None
    started_at: float
    #: The release the replica was started with (its version, and the digest of version and environment);
    #: None in records written before releases, which ran the declared command.
    version: str | None = None
    release: str | None = None

    def is_running(self) -> bool:
        child = _CHILDREN.get(self.pid)
        if child is not None and child.poll() is not None:
            return False
        if not _HAS_PROC:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        stat = _proc_stat(self.pid)
        return stat is not None and stat[0] not in ("Z", "X") and stat[1] == self.start_time

    def signal(self, signum: int) -> None:
        """Signal the replica's process group (its children too), or the process alone if it left it."""
        try:
            if os.getpgid(self.pid) == self.pgid:
                os.killpg(self.pgid, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.is_running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)
        return True

    def terminate(self, *, graceful: bool, grace_period: float) -> bool:
        """Stop the process: SIGTERM then SIGKILL after `grace_period`; True when SIGKILL was sent."""
        if not self.is_running():
            return False
        if graceful:
            self.signal(signal.SIGTERM)
            if self.wait_exit(grace_period):
                self._sweep_group()
                return False
        self.signal(signal.SIGKILL)
        if not self.wait_exit(_KILL_WAIT):
            raise ProviderError(f"pid {self.pid} did not exit {_KILL_WAIT:g}s after SIGKILL", retryable=True)
        self._sweep_group()
        return True

    def _sweep_group(self) -> None:
        # Children left behind in the group would keep the port busy for the next replica.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signal.SIGKILL)


def expand_template(template: str, *, port: int | None, replica: int, version: str | None = None) -> str:
    return (
        template.replace("{python}", sys.executable)
        .replace("{port}", "" if port is None else str(port))
        .replace("{replica}", str(replica))
        .replace("{version}", version or "")
    )


@dataclass(frozen=True)
class ReleaseEnv:
    """What a replica of a release is started with beyond its spec: the version and extra environment."""

    version: str | None
    env: dict[str, str]
    digest: str


def spawn_replica(
    spec: ServiceSpec,
    replica: int,
    *,
    service: str,
    base_dir: Path,
    log_path: Path,
    release: ReleaseEnv | None = None,
) -> ReplicaProcess:
    """Start one replica detached, output appended to `log_path`; the spec's `cwd` is under `base_dir`.
    A `release` adds its environment over the spec's and fills `{version}`."""
    port = spec.port_of(replica)
    version = release.version if release is not None else spec.version
    argv = [expand_template(part, port=port, replica=replica, version=version) for part in spec.command]
    env = dict(os.environ) if spec.inherit_env else {"PATH": os.environ.get("PATH", os.defpath)}
    declared = {**spec.env, **(release.env if release is not None else {})}
    env.update(
        {
            key: expand_template(value, port=port, replica=replica, version=version)
            for key, value in declared.items()
        }
    )
    cwd = base_dir / spec.cwd
    with open(log_path, "ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting replica {replica}\n".encode())
        log.flush()
        try:
            child = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session and group: survives the worker, signalled as one
                close_fds=True,
            )
        except OSError as exc:
            raise ProviderError(
                f"service '{service}' replica {replica}: cannot run '{argv[0]}' in {cwd}: {exc.strerror}",
                retryable=False,
                service=service,
                field="command",
            ) from None
    with _CHILDREN_LOCK:
        _CHILDREN[child.pid] = child
    stat = _proc_stat(child.pid) if _HAS_PROC else None
    return ReplicaProcess(
        replica=replica,
        pid=child.pid,
        pgid=child.pid,
        start_time=stat[1] if stat else None,
        port=port,
        started_at=time.time(),
        version=version,
        release=release.digest if release is not None else None,
    )
