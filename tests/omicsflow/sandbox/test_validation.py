"""Spec validation: every bad path is refused with a SandboxError that names it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from omicsflow.errors import PermanentError, SandboxError
from omicsflow.sandbox.validation import (
    EntryKind,
    resolve_whitelist,
    validate_run_key,
    validate_spec,
)

from .conftest import Workspace


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("/etc", "absolute"),
        ("../other-repo/out", "'..'"),
        ("output/../../x", "'..'"),
        ("", "empty"),
        (".", "repo itself"),
        ("./", "repo itself"),
    ],
)
def test_bad_whitelist_entries_are_rejected_naming_the_entry(
    ws: Workspace, entry: str, message: str
) -> None:
    with pytest.raises(SandboxError, match=message) as info:
        resolve_whitelist(ws.repo, (entry,))
    if entry.strip():
        assert repr(entry) in str(info.value)
    assert isinstance(info.value, PermanentError)


def test_symlink_escaping_the_repo_is_rejected(ws: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (ws.repo / "escape").symlink_to(outside)
    with pytest.raises(SandboxError, match="outside the pipeline repo") as info:
        resolve_whitelist(ws.repo, ("escape/debug.html",))
    assert str(outside) in str(info.value)
    assert not (outside / "debug.html").exists()


def test_symlink_inside_the_repo_is_followed(ws: Workspace) -> None:
    (ws.repo / "out-link").symlink_to(ws.repo / "output")
    [entry] = resolve_whitelist(ws.repo, ("out-link",))
    assert entry.rel == PurePosixPath("output")
    assert entry.kind is EntryKind.DIR


def test_kinds_and_parent_first_order_and_nested_entries_collapse(ws: Workspace) -> None:
    (ws.repo / "style.css").write_text("body {}")
    entries = resolve_whitelist(
        ws.repo, ("reports/new/debug.html", "style.css", "output/sub/x.html", "output", "cache/")
    )
    got = [(str(e.rel), e.kind) for e in entries]
    assert got == [
        ("cache", EntryKind.DIR),
        ("output", EntryKind.DIR),
        ("style.css", EntryKind.FILE),
        ("reports/new/debug.html", EntryKind.FILE),
    ]
    assert all(e.host_path == ws.repo.resolve() / e.rel for e in entries)


def _with(field: str, value: Path) -> dict[str, Any]:
    return {field: value}


@pytest.mark.parametrize("field", ["workdir", "base_dir", "user_dir", "log_path", "cache_dir"])
def test_relative_or_traversing_path_inputs_are_rejected(ws: Workspace, field: str) -> None:
    spec = ws.spec("true")
    with pytest.raises(SandboxError, match=field):
        validate_spec(replace(spec, **_with(field, Path("relative/dir"))))
    with pytest.raises(SandboxError, match=r"'\.\.'"):
        validate_spec(replace(spec, **_with(field, ws.root / "a" / ".." / "b")))


def test_env_names_and_extra_env_are_checked(ws: Workspace) -> None:
    spec = ws.spec("true")
    with pytest.raises(SandboxError, match="unknown keys"):
        validate_spec(replace(spec, env_names={"scratch": "X"}))
    with pytest.raises(SandboxError, match="not a valid variable name"):
        validate_spec(replace(spec, env_names={"base_dir": "1BAD"}))
    with pytest.raises(SandboxError, match="LOMI_BASE_DIR"):
        validate_spec(replace(spec, extra_env={"LOMI_BASE_DIR": "/real/path"}))
    with pytest.raises(SandboxError, match="argv is empty"):
        validate_spec(replace(spec, argv=()))
    with pytest.raises(SandboxError, match="not an existing directory"):
        validate_spec(replace(spec, workdir=ws.root / "missing"))


@pytest.mark.parametrize("key", ["../x", "a/b", "", ".hidden", "x" * 200])
def test_unsafe_run_keys_are_rejected(key: str) -> None:
    with pytest.raises(SandboxError, match="run key"):
        validate_run_key(key)


def test_reasonable_run_key_is_accepted() -> None:
    validate_run_key("svc-a.report_1.g2.a3")
