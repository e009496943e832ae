"""Naming the path behind a "Read-only file system" message, and the hint line."""

from __future__ import annotations

from pathlib import Path

import pytest

from omicsflow.sandbox.logfile import erofs_hints, erofs_path, read_tail


@pytest.mark.parametrize(
    ("line", "path"),
    [
        ("/data/repo/run.sh: line 3: /etc/x: Read-only file system", "/etc/x"),
        ("/data/repo/run.sh: line 3: notes.txt: Read-only file system", "notes.txt"),
        ("touch: cannot touch '/etc/x': Read-only file system", "/etc/x"),
        ("OSError: [Errno 30] Read-only file system: '/data/repo/o.txt'", "/data/repo/o.txt"),
        ("mv: cannot move 'a' to '/data/repo/b': Read-only file system", "/data/repo/b"),
        (
            "Error in file(con, \u2018w\u2019) : cannot open \u2018/r/out.csv\u2019: "
            "Read-only file system",
            "/r/out.csv",
        ),
        ("open(...) failed: Read-only file system", None),
        ("all good", None),
    ],
)
def test_erofs_path_forms(line: str, path: str | None) -> None:
    assert erofs_path(line) == path


def test_hints_name_the_path_once_and_say_what_to_do(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    log = tmp_path / "run.log"
    log.write_text(
        "[omicsflow] attempt start ... Read-only file system\n"
        "run.sh: line 2: output/x.html: Read-only file system\n"
        f"OSError: [Errno 30] Read-only file system: '{repo}/output/x.html'\n"
        "touch: cannot touch '/etc/passwd-': Read-only file system\n"
    )
    hints = erofs_hints(log, 0, repo)
    assert len(hints) == 2
    assert f"{repo}/output/x.html" in hints[0]
    assert "add 'output/x.html' to sandbox_write_whitelist" in hints[0]
    assert "/etc/passwd-" in hints[1]
    assert "only paths inside the pipeline repo" in hints[1]


def test_unnamed_erofs_still_gets_a_hint(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("open(...) failed: Read-only file system\n")
    [hint] = erofs_hints(log, 0, tmp_path)
    assert "names no path" in hint


def test_tail_is_bounded_and_tolerates_bad_bytes(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"a" * 100 + b"\xff\xfe" + b"z" * 10)
    assert read_tail(log, limit=12) == "\ufffd\ufffd" + "z" * 10
    assert read_tail(tmp_path / "missing") == ""
