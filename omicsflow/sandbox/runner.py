"""Run one pipeline attempt, sandboxed (bwrap) or direct, and make sure nothing outlives it.

Sandboxed: scratch created, inputs copied in, bwrap started in its own process group,
outputs copied back, scratch removed. Direct: the same process handling on the real dirs
(the caller forces max_workers to 1 then, since runs are no longer isolated).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from omicsflow.errors import SandboxError
from omicsflow.sandbox import logfile
from omicsflow.sandbox.bwrap import Bind, build_bwrap_argv
from omicsflow.sandbox.env import build_pipeline_env
from omicsflow.sandbox.process import kill_process_group, shell_exit_code
from omicsflow.sandbox.scratch import (
    copy_back,
    copy_in,
    create_scratch,
    prepare_repo_writes,
    remove_tree,
    sweep,
)
from omicsflow.sandbox.spec import (
    EXIT_CANNOT_EXECUTE,
    EXIT_COMMAND_NOT_FOUND,
    EXIT_TIMEOUT,
    PipelineResult,
    PipelineSpec,
)
from omicsflow.sandbox.validation import WhitelistEntry, validate_run_key, validate_spec

_WAIT_SLICE_SECONDS = 0.05  # how often cancel_event and the deadline are checked


@dataclass(frozen=True)
class _Outcome:
    returncode: int  # already in shell convention
    timed_out: bool
    cancelled: bool
    elapsed: float
    started: bool


class PipelineRunner:
    def __init__(
        self,
        scratch_root: Path,
        sandbox: bool = True,
        bwrap: str = "bwrap",
        *,
        kill_grace_seconds: float = 5.0,
    ) -> None:
        if not scratch_root.is_absolute():
            raise SandboxError(f"scratch_root must be absolute, got {str(scratch_root)!r}")
        self.scratch_root = scratch_root
        self.sandbox = sandbox
        self.bwrap = bwrap
        self.kill_grace_seconds = kill_grace_seconds
        self._lock = threading.Lock()
        self._active: set[str] = set()

    # -- public API -------------------------------------------------------------------------

    def run(
        self,
        spec: PipelineSpec,
        run_key: str,
        on_start: Callable[[int], None] | None = None,
        cancel_event: threading.Event | None = None,
    ) -> PipelineResult:
        """Run the attempt to its end (exit, timeout or cancel); blocks the calling thread.

        Must be called from a thread that outlives the run: bwrap's --die-with-parent is tied
        to the thread that started it, which is exactly what we want for a crash, but a
        short-lived helper thread would kill the pipeline when it exits.
        """
        validate_run_key(run_key)
        entries = validate_spec(spec)
        with self._claim(run_key):
            if self.sandbox:
                return self._run_sandboxed(spec, run_key, entries, on_start, cancel_event)
            return self._run_direct(spec, on_start, cancel_event)

    def sweep_orphans(self, active_run_keys: Collection[str]) -> list[Path]:
        """Remove scratch dirs of runs that are not active (left by a kill -9 or a crash)."""
        with self._lock:
            keep = set(active_run_keys) | self._active
        return sweep(self.scratch_root, keep)

    # -- modes ------------------------------------------------------------------------------

    def _run_sandboxed(
        self,
        spec: PipelineSpec,
        run_key: str,
        entries: list[WhitelistEntry],
        on_start: Callable[[int], None] | None,
        cancel_event: threading.Event | None,
    ) -> PipelineResult:
        scratch = create_scratch(self.scratch_root, run_key)
        keep_scratch = False
        try:
            copy_in(spec.base_dir, scratch.base)
            copy_in(spec.user_dir, scratch.user_data)
            binds = prepare_repo_writes(scratch, entries)
            env = build_pipeline_env(spec, scratch.base, scratch.user_data, os.environ)
            cache_bind = _cache_bind(spec, env)
            with logfile.open_log(spec.log_path) as log:
                logfile.write_line(log, logfile.header(spec.argv, sandboxed=True))
                offset = spec.log_path.stat().st_size
                # Pipe fds are non-inheritable; pass_fds hands only the write end to bwrap.
                status_r, status_w = os.pipe()
                try:
                    try:
                        cmd = build_bwrap_argv(
                            bwrap=self.bwrap,
                            argv=spec.argv,
                            workdir=spec.workdir.resolve(),
                            scratch_dir=scratch.root,
                            log_path=spec.log_path,
                            env=env,
                            repo_binds=binds,
                            cache_bind=cache_bind,
                            json_status_fd=status_w,
                        )
                        outcome = self._execute(
                            cmd, env, None, log, spec, on_start, cancel_event, (status_w,)
                        )
                    finally:
                        # Each closed exactly once: a double close could hit another thread's fd.
                        os.close(status_w)
                    status = _read_available(status_r)
                finally:
                    os.close(status_r)
                if not outcome.started:
                    raise SandboxError(f"cannot start {self.bwrap!r}: is bubblewrap installed?")
                if _setup_failed(outcome, status):
                    detail = _bwrap_errors(spec.log_path, offset)
                    logfile.write_line(
                        log, f"sandbox: bwrap could not set up the sandbox: {detail}"
                    )
                    raise SandboxError(f"bwrap could not set up the sandbox: {detail}")
                _write_end(log, outcome)
                for hint in logfile.erofs_hints(spec.log_path, offset, spec.workdir):
                    logfile.write_line(log, hint)
                keep_scratch = True  # until the copy-back succeeded: the outputs live there
                written = copy_back(scratch, spec.base_dir, spec.user_dir)
                keep_scratch = False
                logfile.write_line(
                    log, f"sandbox: copied back {len(written)} new or changed file(s)"
                )
        finally:
            if not keep_scratch:
                remove_tree(scratch.root)
        return _result(spec, outcome, sandboxed=True)

    def _run_direct(
        self,
        spec: PipelineSpec,
        on_start: Callable[[int], None] | None,
        cancel_event: threading.Event | None,
    ) -> PipelineResult:
        # Same contract as the sandbox: the real dirs exist when the pipeline starts.
        spec.base_dir.mkdir(parents=True, exist_ok=True)
        spec.user_dir.mkdir(parents=True, exist_ok=True)
        env = build_pipeline_env(spec, spec.base_dir, spec.user_dir, os.environ)
        with logfile.open_log(spec.log_path) as log:
            logfile.write_line(log, logfile.header(spec.argv, sandboxed=False))
            outcome = self._execute(
                list(spec.argv), env, spec.workdir, log, spec, on_start, cancel_event
            )
            _write_end(log, outcome)
        return _result(spec, outcome, sandboxed=False)

    # -- process handling -------------------------------------------------------------------

    def _execute(
        self,
        cmd: Sequence[str],
        env: dict[str, str],
        cwd: Path | None,
        log: TextIO,
        spec: PipelineSpec,
        on_start: Callable[[int], None] | None,
        cancel_event: threading.Event | None,
        pass_fds: Sequence[int] = (),
    ) -> _Outcome:
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=cwd,
                # bwrap itself gets the allowlist too: its environment is readable in the
                # sandbox as /proc/1/environ.
                env=env,
                # Own session = own process group: the pgid is what a cancel (from this or
                # another process) kills; Prefect's cancel does not reach our children.
                start_new_session=True,
                pass_fds=tuple(pass_fds),
            )
        except OSError as exc:
            code = EXIT_COMMAND_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_CANNOT_EXECUTE
            logfile.write_line(log, f"cannot start {cmd[0]!r}: {exc}")
            return _Outcome(code, timed_out=False, cancelled=False, elapsed=0.0, started=False)
        started = time.monotonic()
        pgid = proc.pid
        timed_out = cancelled = False
        try:
            if on_start is not None:
                on_start(pgid)
            deadline = started + spec.timeout_seconds
            with _exit_waiter(proc.pid) as exited:
                while not exited(_WAIT_SLICE_SECONDS):
                    if cancel_event is not None and cancel_event.is_set():
                        cancelled = True
                    elif time.monotonic() >= deadline:
                        timed_out = True
                    if cancelled or timed_out:
                        logfile.write_line(
                            log,
                            "cancel requested: killing"
                            if cancelled
                            else f"timeout after {spec.timeout_seconds:g}s: killing",
                        )
                        kill_process_group(pgid, self.kill_grace_seconds)
                        break
            elapsed = time.monotonic() - started
            # The leader is exited but not reaped yet (WNOWAIT), so the pgid cannot be reused:
            # kill whatever it left behind (direct mode: `cmd &` without wait) before reaping.
            kill_process_group(pgid, self.kill_grace_seconds)
        except BaseException:
            # on_start failed, or we are being interrupted: never leave the pipeline running.
            if pass_fds:  # bwrap: see _wait_for_sandbox_child
                _wait_for_sandbox_child(proc)
            kill_process_group(pgid, self.kill_grace_seconds)
            proc.wait()
            raise
        code = shell_exit_code(proc.wait())
        if timed_out:
            code = EXIT_TIMEOUT
        return _Outcome(
            code, timed_out=timed_out, cancelled=cancelled, elapsed=elapsed, started=True
        )

    @contextlib.contextmanager
    def _claim(self, run_key: str) -> Iterator[None]:
        with self._lock:
            if run_key in self._active:
                raise SandboxError(f"run key {run_key!r} is already running in this process")
            self._active.add(run_key)
        try:
            yield
        finally:
            with self._lock:
                self._active.discard(run_key)


def _wait_for_sandbox_child(proc: subprocess.Popen[bytes], timeout: float = 2.0) -> None:
    """Wait (briefly) until bwrap has created its sandbox child, or has exited.

    Killed in its first milliseconds, bwrap can die after clone() but before the child arms
    --die-with-parent; that child would then run the pipeline unowned. Once the child is
    bwrap's child, the kill below sees it as a descendant and kills it too.
    """
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if children.read_text().split():
                return
        except OSError:
            return
        time.sleep(0.005)  # polling interval only; the condition is the children file


@contextlib.contextmanager
def _exit_waiter(pid: int) -> Iterator[Callable[[float], bool]]:
    """`exited(timeout)`: True once `pid` has exited, without reaping it (WNOWAIT).

    A pidfd makes the wake-up immediate; older kernels fall back to polling.
    """
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None

    def exited(timeout: float) -> bool:
        if pidfd is not None:
            select.select([pidfd], [], [], timeout)
        elif os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
            time.sleep(timeout)
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None

    try:
        yield exited
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _cache_bind(spec: PipelineSpec, env: dict[str, str]) -> Bind | None:
    if spec.cache_dir is None:
        return None
    home = Path(env.get("HOME", ""))
    if not home.is_absolute():
        raise SandboxError(f"HOME must be absolute to bind the cache, got {str(home)!r}")
    dest = home / ".cache"
    try:
        spec.cache_dir.mkdir(parents=True, exist_ok=True)
        # bwrap cannot create a mount point inside the read-only root.
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SandboxError(f"cannot prepare the cache bind {str(dest)!r}: {exc}") from exc
    return Bind(source=spec.cache_dir, dest=dest)


def _read_available(read_fd: int) -> str:
    """What bwrap wrote to the status pipe; never blocks (the pipeline may hold the fd)."""
    flags = fcntl.fcntl(read_fd, fcntl.F_GETFL)
    fcntl.fcntl(read_fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _setup_failed(outcome: _Outcome, status: str) -> bool:
    # bwrap reports {"exit-code": N} only once the command has run; exit 1 without it means
    # bwrap itself failed (bad bind, no user namespaces). Killed runs never report it either.
    return (
        not (outcome.timed_out or outcome.cancelled)
        and outcome.returncode == 1
        and ('"exit-code"' not in status)
    )


def _bwrap_errors(log_path: Path, offset: int) -> str:
    with open(log_path, "rb") as fh:
        fh.seek(offset)
        lines = fh.read().decode("utf-8", errors="replace").splitlines()
    errors = [line for line in lines if line.startswith("bwrap:")]
    return "; ".join(errors) or "no message from bwrap"


def _write_end(log: TextIO, outcome: _Outcome) -> None:
    how = " (timed out)" if outcome.timed_out else " (cancelled)" if outcome.cancelled else ""
    logfile.write_line(
        log, f"attempt end exit_code={outcome.returncode}{how} elapsed={outcome.elapsed:.1f}s"
    )


def _result(spec: PipelineSpec, outcome: _Outcome, sandboxed: bool) -> PipelineResult:
    return PipelineResult(
        exit_code=outcome.returncode,
        timed_out=outcome.timed_out,
        cancelled=outcome.cancelled,
        elapsed_seconds=outcome.elapsed,
        log_tail=logfile.read_tail(spec.log_path),
        sandboxed=sandboxed,
    )
