"""The attempt log: our marker lines, the EROFS explanation, and the tail for the failure card.

The log is the first thing a lab engineer reads when a run fails; a bare "Read-only file
system" from deep inside an R script does not say that the sandbox caused it, nor what to do.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

MARK = "[omicsflow]"
EROFS_TEXT = "Read-only file system"
TAIL_BYTES = 64 * 1024
_MAX_EROFS_HINTS = 10

# '/path', "/path", `/path' or curly-quoted (U+2018/U+2019): how coreutils, Python and R
# quote file names.
_QUOTED = re.compile("['\"\u2018`]([^'\"\u2019`\n]+)['\"\u2019`]")


def open_log(path: Path) -> TextIO:
    """Append mode, line buffered: the UI tails this file while the attempt runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "a", buffering=1, encoding="utf-8", errors="replace")


def write_line(log: TextIO, text: str) -> None:
    log.write(f"{MARK} {text}\n")
    log.flush()


def header(argv: Sequence[str], sandboxed: bool) -> str:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return f"attempt start {now} argv={shlex.join(argv)} sandbox={'on' if sandboxed else 'off'}"


def _lines_from(path: Path, offset: int) -> Iterator[str]:
    with open(path, "rb") as fh:
        fh.seek(offset)
        for raw in fh:
            yield raw.decode("utf-8", errors="replace").rstrip("\n")


def erofs_path(line: str) -> str | None:
    """The path a "Read-only file system" message is about, or None if it names none.

    Forms seen in pipelines:
      bash:    run.sh: line 3: /etc/x: Read-only file system
      touch:   touch: cannot touch '/etc/x': Read-only file system
      Python:  OSError: [Errno 30] Read-only file system: '/repo/out.txt'
      R/C:     open(...) failed: Read-only file system   (no path: None)
    """
    at = line.find(EROFS_TEXT)
    if at < 0:
        return None
    quoted = [
        (abs(m.start() - at if m.start() > at else at - m.end()), m.group(1))
        for m in _QUOTED.finditer(line)
    ]
    if quoted:
        return min(quoted)[1]
    before = line[:at].rstrip()
    if before.endswith(":"):
        candidate = before[:-1].rsplit(": ", 1)[-1].strip()
        if candidate and (candidate.startswith("/") or " " not in candidate):
            return candidate
    after = line[at + len(EROFS_TEXT) :].lstrip(": ").split()
    if after and "/" in after[0]:
        return after[0]
    return None


def erofs_hints(log_path: Path, offset: int, workdir: Path) -> list[str]:
    """Explanations for the EROFS failures logged since `offset`, one per distinct path."""
    seen: dict[str, str] = {}
    unnamed = False
    for line in _lines_from(log_path, offset):
        if line.startswith(MARK) or EROFS_TEXT not in line:
            continue
        found = erofs_path(line)
        if found is None:
            unnamed = True
            continue
        # Relative names are relative to the pipeline's cwd, which starts as the repo.
        path = found if found.startswith("/") else str(workdir / found)
        if path not in seen and len(seen) < _MAX_EROFS_HINTS:
            seen[path] = _hint(path, workdir)
    hints = list(seen.values())
    if unnamed and not hints:
        hints.append(
            "sandbox: the pipeline tried to write outside its scratch (the message above names "
            "no path); find the write and add its repo-relative path to sandbox_write_whitelist "
            "in the services file if the write is legitimate"
        )
    return hints


def _hint(path: str, workdir: Path) -> str:
    prefix = f"sandbox: the pipeline tried to write outside its scratch: {path}; "
    rel = _repo_relative(Path(path), workdir)
    if rel is not None:
        return (
            prefix + f"add {rel!r} to sandbox_write_whitelist in the services file if the "
            "write is legitimate (results belong in the base dir, not in the repo)"
        )
    return (
        prefix + f"only paths inside the pipeline repo {workdir} can be added to "
        "sandbox_write_whitelist; write to the base/user dir ($LOMI_BASE_DIR, $LOMI_USER_DIR) "
        "or /tmp instead"
    )


def _repo_relative(path: Path, workdir: Path) -> str | None:
    for root in (workdir, workdir.resolve()):
        try:
            rel = path.relative_to(root)
        except ValueError:
            continue
        return rel.as_posix() if rel.parts else None
    return None


def read_tail(path: Path, limit: int = TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            data = fh.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")
