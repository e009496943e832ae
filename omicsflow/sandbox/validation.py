"""Checks a PipelineSpec before anything touches the disk; every rejection names the path.

The whitelist comes from the services file, i.e. from people: a typo like "/etc" or
"../other-repo/out" must fail loudly (SandboxError, permanent) instead of silently making
a host path writable or binding outside the pipeline repo.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from omicsflow.errors import SandboxError
from omicsflow.sandbox.spec import PipelineSpec

ENV_NAME_KEYS = frozenset({"base_dir", "user_dir"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The run key becomes a directory name under the scratch root: keep it one safe component.
_RUN_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class EntryKind(str, enum.Enum):
    DIR = "dir"
    FILE = "file"


@dataclass(frozen=True)
class WhitelistEntry:
    """One writable repo path: `rel` inside the repo, `host_path` where it is bound."""

    rel: PurePosixPath
    host_path: Path
    kind: EntryKind


def validate_run_key(run_key: str) -> None:
    if not _RUN_KEY.match(run_key) or run_key in {".", ".."}:
        raise SandboxError(
            f"invalid run key {run_key!r}: use 1-128 of [A-Za-z0-9._-], starting alphanumeric"
        )


def _check_absolute(label: str, path: Path) -> None:
    if not path.is_absolute():
        raise SandboxError(f"{label} must be an absolute path, got {str(path)!r}")
    if ".." in path.parts:
        raise SandboxError(f"{label} must not contain '..', got {str(path)!r}")


def validate_spec(spec: PipelineSpec) -> list[WhitelistEntry]:
    """Validate paths, env names and argv; return the whitelist resolved against workdir."""
    if not spec.argv or not spec.argv[0]:
        raise SandboxError("pipeline argv is empty")
    if any("\0" in arg for arg in spec.argv):
        raise SandboxError("pipeline argv contains a NUL byte")
    if not spec.timeout_seconds > 0:
        raise SandboxError(f"timeout_seconds must be > 0, got {spec.timeout_seconds!r}")
    _check_absolute("workdir", spec.workdir)
    _check_absolute("base_dir", spec.base_dir)
    _check_absolute("user_dir", spec.user_dir)
    _check_absolute("log_path", spec.log_path)
    if spec.cache_dir is not None:
        _check_absolute("cache_dir", spec.cache_dir)
    if not spec.workdir.is_dir():
        raise SandboxError(f"workdir {str(spec.workdir)!r} is not an existing directory")
    unknown = set(spec.env_names) - ENV_NAME_KEYS
    if unknown:
        raise SandboxError(
            f"env_names has unknown keys {sorted(unknown)}; allowed: base_dir, user_dir"
        )
    for key, name in spec.env_names.items():
        if not _ENV_NAME.match(name):
            raise SandboxError(f"env_names[{key!r}] is not a valid variable name: {name!r}")
        if name in spec.extra_env:
            # The runner owns these (they point into the scratch); a service value would be
            # silently overridden, so refuse instead of guessing which one was meant.
            raise SandboxError(f"extra_env must not set {name!r}: it carries the {key} path")
    for name in spec.extra_env:
        if not _ENV_NAME.match(name):
            raise SandboxError(f"extra_env has an invalid variable name: {name!r}")
    return resolve_whitelist(spec.workdir, spec.write_whitelist)


def resolve_whitelist(workdir: Path, entries: tuple[str, ...]) -> list[WhitelistEntry]:
    """Turn whitelist strings into entries, parents first (so nested binds stack correctly).

    Kind: an existing path keeps its type; a missing one is a directory when written with a
    trailing "/" or without a suffix ("output"), else a file ("style.css", "debug.html").
    """
    root = workdir.resolve()
    resolved: dict[PurePosixPath, WhitelistEntry] = {}
    for raw in entries:
        if not raw.strip():
            raise SandboxError("sandbox_write_whitelist has an empty entry")
        rel = PurePosixPath(raw)
        if rel.is_absolute():
            raise SandboxError(
                f"sandbox_write_whitelist entry {raw!r} is absolute; entries are relative "
                f"to the pipeline repo {str(workdir)!r}"
            )
        if ".." in rel.parts:
            raise SandboxError(f"sandbox_write_whitelist entry {raw!r} contains '..'")
        if not rel.parts:  # "." or "./": would make the whole repo writable
            raise SandboxError(
                f"sandbox_write_whitelist entry {raw!r} names the repo itself; list the paths"
            )
        host = root.joinpath(*rel.parts)
        # resolve() follows symlinks in every existing component, so a link pointing out of
        # the repo (output -> /etc) is caught here, before anything is created or bound.
        real = host.resolve()
        if real != root and root not in real.parents:
            raise SandboxError(
                f"sandbox_write_whitelist entry {raw!r} resolves to {str(real)!r}, "
                f"outside the pipeline repo {str(root)!r} (symlink?)"
            )
        if real == root:
            raise SandboxError(f"sandbox_write_whitelist entry {raw!r} resolves to the repo itself")
        if real.is_dir():
            kind = EntryKind.DIR
        elif real.exists():
            kind = EntryKind.FILE
        elif raw.endswith("/") or not rel.suffix:
            kind = EntryKind.DIR
        else:
            kind = EntryKind.FILE
        real_rel = PurePosixPath(real.relative_to(root).as_posix())
        resolved[real_rel] = WhitelistEntry(rel=real_rel, host_path=real, kind=kind)
    ordered = sorted(resolved.values(), key=lambda e: (len(e.rel.parts), str(e.rel)))
    kept: list[WhitelistEntry] = []
    for entry in ordered:
        outers = [resolved[p] for p in entry.rel.parents if p in resolved]
        if any(outer.kind is EntryKind.FILE for outer in outers):
            raise SandboxError(f"whitelist entry {str(entry.rel)!r} is inside a whitelisted file")
        if not outers:  # under a whitelisted dir it is writable already: one bind is enough
            kept.append(entry)
    return kept
