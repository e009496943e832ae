"""Fixtures for the sandbox tests: a pipeline repo, real dirs and a runner, all under tmp_path."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from omicsflow.sandbox.bwrap import bwrap_available
from omicsflow.sandbox.process import process_table
from omicsflow.sandbox.spec import PipelineSpec

ENV_NAMES = {"base_dir": "LOMI_BASE_DIR", "user_dir": "LOMI_USER_DIR"}


@dataclass
class Workspace:
    root: Path
    repo: Path
    base: Path
    user: Path
    logs: Path
    scratch_root: Path
    cache: Path
    token: str  # put in every pipeline's env: finds its processes in /proc

    def script(self, body: str, name: str = "run.sh") -> Path:
        path = self.repo / name
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(0o755)
        return path

    def spec(self, body: str, **overrides: object) -> PipelineSpec:
        script = self.script(body)
        spec = PipelineSpec(
            argv=("bash", str(script)),
            workdir=self.repo,
            base_dir=self.base,
            user_dir=self.user,
            env_names=ENV_NAMES,
            extra_env={"OMICSFLOW_TEST_TOKEN": self.token},
            write_whitelist=("output",),
            log_path=self.logs / "run.log.1",
            timeout_seconds=60.0,
            cache_dir=self.cache,
        )
        return replace(spec, **overrides)  # type: ignore[arg-type]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    w = Workspace(
        root=tmp_path,
        repo=tmp_path / "pipelines" / "demo-pipeline",
        base=tmp_path / "patient-base" / "P001",
        user=tmp_path / "user-data" / "P001",
        logs=tmp_path / "logs" / "P001",
        scratch_root=tmp_path / "scratch",
        cache=tmp_path / "cache",
        token=uuid.uuid4().hex,
    )
    (w.repo / "output").mkdir(parents=True)
    return w


@pytest.fixture(scope="session")
def require_bwrap() -> None:
    ok, message = bwrap_available()
    if not ok:
        pytest.skip(message)


def processes_with_token(token: str) -> list[int]:
    """Live processes whose environment carries `token` (zombies excluded)."""
    needle = f"OMICSFLOW_TEST_TOKEN={token}".encode()
    found = []
    for pid in process_table():
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(pid)
        except OSError:
            continue
    return found


def group_members(pgid: int) -> list[int]:
    return [pid for pid, info in process_table().items() if info.pgrp == pgid]


def wait_until(check: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    """Poll a condition the pipeline makes true (a file it writes), with a deadline."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
