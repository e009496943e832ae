"""The bubblewrap command line, as a pure function, and the `doctor` probe.

Why bwrap (seed 004): the first sandbox used unshare + overlayfs and failed in production
(EOVERFLOW on copy_up); bwrap needs no overlay: the root is bound read-only and only the
per-run scratch, the cache, the log and the whitelisted repo paths are writable.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TMP = Path("/tmp")

# Kills with the sandbox: a private pid namespace whose init dies with bwrap, so killing bwrap
# (or our process dying) takes every process inside with it, whatever sessions they created.
# --new-session also stops a pipeline from pushing keystrokes into our terminal (TIOCSTI).
_LIFETIME_FLAGS = ("--unshare-pid", "--die-with-parent", "--new-session")


@dataclass(frozen=True)
class Bind:
    """A read-write bind: `source` on the host appears at `dest` inside."""

    source: Path
    dest: Path


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def build_bwrap_argv(
    *,
    bwrap: str,
    argv: Sequence[str],
    workdir: Path,
    scratch_dir: Path,
    log_path: Path,
    env: Mapping[str, str],
    repo_binds: Sequence[Bind] = (),
    cache_bind: Bind | None = None,
    json_status_fd: int | None = None,
) -> list[str]:
    """Pure: the full bwrap argv. Order matters: bwrap applies mounts left to right."""
    cmd = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    if _under(workdir, TMP):
        # The private /tmp hides a repo that lives under /tmp (tests, ad-hoc runs): show it
        # again, read-only, before the whitelisted binds stack on top of it.
        cmd += ["--ro-bind", str(workdir), str(workdir)]
    # The scratch and the log keep their host paths inside, so paths in messages and the live
    # tail mean the same thing on both sides.
    cmd += ["--bind", str(scratch_dir), str(scratch_dir)]
    if cache_bind is not None:
        cmd += ["--bind", str(cache_bind.source), str(cache_bind.dest)]
    cmd += ["--bind", str(log_path), str(log_path)]
    for bind in repo_binds:
        cmd += ["--bind", str(bind.source), str(bind.dest)]
    cmd += [*_LIFETIME_FLAGS, "--chdir", str(workdir), "--clearenv"]
    for name, value in env.items():
        cmd += ["--setenv", name, value]
    if json_status_fd is not None:
        # bwrap writes {"child-pid": ...} then {"exit-code": N} only if the command really
        # ran: its absence tells a sandbox setup failure from a pipeline exiting 1.
        cmd += ["--json-status-fd", str(json_status_fd)]
    cmd += ["--", *argv]
    return cmd


def bwrap_available(bwrap: str = "bwrap") -> tuple[bool, str]:
    """Really start a sandbox with the flags runs use; (ok, message) for `omicsflow doctor`."""
    probe = [
        bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
        *_LIFETIME_FLAGS, "true",
    ]  # fmt: skip
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return False, (
            f"{bwrap!r} not found: install bubblewrap (apt install bubblewrap / "
            "yum install bubblewrap) or turn the sandbox off (forces max_workers to 1)"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{bwrap!r} could not be run: {exc}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
        return False, (
            f"{bwrap!r} is installed but cannot create a sandbox here: {detail} "
            "(user namespaces disabled? running in an unprivileged container?)"
        )
    try:
        version = subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = ""
    return True, f"{version or bwrap} works (read-only root, private /tmp and pid namespace)"
