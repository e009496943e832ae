"""The per-run scratch dir: `<root>/run-<run_key>/{base,user-data,repo-writes}`.

Inputs are copied in before the run and new or changed outputs copied back after it, so two
concurrent runs never see each other's files and a killed run never leaves half-written
files in the real dirs while it is still running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omicsflow.errors import SandboxError
from omicsflow.sandbox.bwrap import Bind
from omicsflow.sandbox.validation import EntryKind, WhitelistEntry

RUN_PREFIX = "run-"


@dataclass(frozen=True)
class Scratch:
    root: Path

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def user_data(self) -> Path:
        return self.root / "user-data"

    @property
    def repo_writes(self) -> Path:
        return self.root / "repo-writes"


def scratch_for(scratch_root: Path, run_key: str) -> Scratch:
    return Scratch(scratch_root / f"{RUN_PREFIX}{run_key}")


def create_scratch(scratch_root: Path, run_key: str) -> Scratch:
    """Create an empty scratch; a leftover of a crashed attempt with the same key is replaced.

    The runner refuses a key that is active in this process; across processes the ledger
    hands out unique keys, so an existing dir can only be a leftover.
    """
    scratch = scratch_for(scratch_root, run_key)
    if scratch.root.exists():
        remove_tree(scratch.root)
    scratch_root.mkdir(parents=True, exist_ok=True)
    # 0700: the scratch holds patient data; other local users must not read it.
    scratch.root.mkdir(mode=0o700)
    for sub in (scratch.base, scratch.user_data, scratch.repo_writes):
        sub.mkdir()
    return scratch


def copy_in(real: Path, inside: Path) -> None:
    """Copy a real dir's tree into the scratch, creating the real dir if it is missing.

    copy2 keeps mtimes, which copy_out relies on to tell changed files from untouched ones;
    symlinks stay symlinks (the read-only root still resolves them, writes through them fail).
    """
    real.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(real, inside, symlinks=True, dirs_exist_ok=True)
    except (OSError, shutil.Error) as exc:
        raise SandboxError(
            f"cannot copy {str(real)!r} into the scratch {str(inside)!r}: {exc}"
        ) from exc


def prepare_repo_writes(scratch: Scratch, entries: list[WhitelistEntry]) -> list[Bind]:
    """Give each whitelisted repo path a private copy in `repo-writes/`; return the binds.

    The repo's current content is copied in so the pipeline reads what it would read without
    the sandbox; its writes stay in the scratch and are discarded with it (they are per-run
    intermediates like output/debug.html, never results: results go to the base dir).
    bwrap cannot create a mount point inside the read-only root, so a missing whitelisted
    path is created (empty) in the real repo first; that is the only write to the repo.
    """
    binds: list[Bind] = []
    for entry in entries:
        private = scratch.repo_writes.joinpath(*entry.rel.parts)
        try:
            if entry.kind is EntryKind.DIR:
                entry.host_path.mkdir(parents=True, exist_ok=True)
                shutil.copytree(entry.host_path, private, symlinks=True)
            else:
                entry.host_path.parent.mkdir(parents=True, exist_ok=True)
                # O_CREAT without O_TRUNC: concurrent runs preparing the same file are safe.
                os.close(os.open(entry.host_path, os.O_WRONLY | os.O_CREAT, 0o644))
                private.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(entry.host_path, private)
        except (OSError, shutil.Error) as exc:
            raise SandboxError(
                f"cannot prepare whitelisted repo path {str(entry.host_path)!r}: {exc}"
            ) from exc
        binds.append(Bind(source=private, dest=entry.host_path))
    return binds


def _same_file(src: os.stat_result, dst: os.stat_result) -> bool:
    return src.st_size == dst.st_size and src.st_mtime_ns == dst.st_mtime_ns


def copy_out(inside: Path, real: Path) -> list[Path]:
    """Copy new and changed entries back; return the real paths written.

    Deletions inside the scratch are not propagated: a pipeline cannot destroy inputs.
    Each file lands via a temp file + rename, so readers never see a half-copied file.
    """
    written: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(inside):
        rel_dir = Path(dirpath).relative_to(inside)
        target_dir = real / rel_dir
        target_dir.mkdir(parents=True, exist_ok=True)
        # os.walk lists symlinks to dirs under dirnames without following them.
        for name in [*filenames, *(d for d in dirnames if Path(dirpath, d).is_symlink())]:
            src = Path(dirpath, name)
            dst = target_dir / name
            if _copy_entry(src, dst):
                written.append(dst)
    return written


def _copy_entry(src: Path, dst: Path) -> bool:
    st = src.lstat()
    try:
        dst_st: os.stat_result | None = dst.lstat()
    except FileNotFoundError:
        dst_st = None
    if dst_st is not None and stat.S_ISDIR(dst_st.st_mode):
        raise SandboxError(f"cannot copy {str(src)!r} back: {str(dst)!r} is a directory")
    if stat.S_ISLNK(st.st_mode):
        link = os.readlink(src)
        if dst_st is not None and stat.S_ISLNK(dst_st.st_mode) and os.readlink(dst) == link:
            return False
        tmp = dst.with_name(f".{dst.name}.omicsflow-tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(link, tmp)
        os.replace(tmp, dst)
        return True
    if not stat.S_ISREG(st.st_mode):
        return False  # fifos, sockets: runtime artefacts, not outputs
    if dst_st is not None and stat.S_ISREG(dst_st.st_mode) and _same_file(st, dst_st):
        return False
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copy2(src, tmp_name)
        os.replace(tmp_name, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return True


def copy_back(scratch: Scratch, base_dir: Path, user_dir: Path) -> list[Path]:
    try:
        return copy_out(scratch.base, base_dir) + copy_out(scratch.user_data, user_dir)
    except (OSError, shutil.Error) as exc:
        raise SandboxError(
            f"copying outputs back from {str(scratch.root)!r} failed: {exc}; the scratch is "
            "kept for recovery until the next orphan sweep"
        ) from exc


def _make_writable_and_retry(func: Callable[..., Any], path: str, _exc: Any) -> None:
    # A pipeline may leave read-only dirs behind (chmod -w); as non-root rmtree needs +w.
    parent = os.path.dirname(path)
    with contextlib.suppress(OSError):
        os.chmod(parent, stat.S_IRWXU)
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IRWXU)
    func(path)


def remove_tree(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    shutil.rmtree(path, onerror=_make_writable_and_retry)


def sweep(scratch_root: Path, keep_run_keys: Collection[str]) -> list[Path]:
    """Remove `run-*` dirs whose key is not kept; anything else under the root is left alone."""
    if not scratch_root.is_dir():
        return []
    keep = {f"{RUN_PREFIX}{key}" for key in keep_run_keys}
    removed: list[Path] = []
    for child in sorted(scratch_root.iterdir()):
        if not child.name.startswith(RUN_PREFIX) or child.name in keep:
            continue
        if child.is_symlink() or not child.is_dir():
            continue
        remove_tree(child)
        removed.append(child)
    return removed
