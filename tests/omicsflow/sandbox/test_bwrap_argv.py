"""The bwrap command line and the pipeline env, as pure functions (no bwrap needed)."""

from __future__ import annotations

from pathlib import Path

from omicsflow.sandbox.bwrap import Bind, build_bwrap_argv
from omicsflow.sandbox.env import build_pipeline_env

from .conftest import Workspace


def _pairs(cmd: list[str], flag: str) -> list[tuple[str, str]]:
    return [(cmd[i + 1], cmd[i + 2]) for i, arg in enumerate(cmd) if arg == flag]


def test_argv_layout_and_mount_order() -> None:
    cmd = build_bwrap_argv(
        bwrap="bwrap",
        argv=["bash", "/data/repo/run.sh", "--flag"],
        workdir=Path("/data/repo"),
        scratch_dir=Path("/var/tmp/scratch/run-k"),
        log_path=Path("/home/o/logs/r/run.log.1"),
        env={"PATH": "/usr/bin", "LOMI_BASE_DIR": "/var/tmp/scratch/run-k/base"},
        repo_binds=[
            Bind(Path("/var/tmp/scratch/run-k/repo-writes/output"), Path("/data/repo/output"))
        ],
        cache_bind=Bind(Path("/srv/cache"), Path("/home/o/.cache")),
        json_status_fd=5,
    )
    assert cmd[:10] == [
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    assert _pairs(cmd, "--bind") == [
        ("/var/tmp/scratch/run-k", "/var/tmp/scratch/run-k"),
        ("/srv/cache", "/home/o/.cache"),
        ("/home/o/logs/r/run.log.1", "/home/o/logs/r/run.log.1"),
        ("/var/tmp/scratch/run-k/repo-writes/output", "/data/repo/output"),
    ]
    assert "/data/repo" not in [src for src, _ in _pairs(cmd, "--ro-bind")]
    for flag in ("--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in cmd
    assert cmd[cmd.index("--chdir") + 1] == "/data/repo"
    # --clearenv comes before the allowlisted values, the command comes after "--".
    assert cmd.index("--clearenv") < cmd.index("--setenv")
    assert _pairs(cmd, "--setenv") == [
        ("PATH", "/usr/bin"),
        ("LOMI_BASE_DIR", "/var/tmp/scratch/run-k/base"),
    ]
    assert cmd[cmd.index("--json-status-fd") + 1] == "5"
    assert cmd[cmd.index("--") + 1 :] == ["bash", "/data/repo/run.sh", "--flag"]


def test_repo_under_tmp_is_shown_again_after_the_private_tmp() -> None:
    cmd = build_bwrap_argv(
        bwrap="bwrap",
        argv=["true"],
        workdir=Path("/tmp/x/repo"),
        scratch_dir=Path("/tmp/x/scratch/run-k"),
        log_path=Path("/tmp/x/run.log"),
        env={},
    )
    assert cmd.index("--tmpfs") < cmd.index("/tmp/x/repo")
    assert ("/tmp/x/repo", "/tmp/x/repo") in _pairs(cmd, "--ro-bind")


def test_env_is_an_allowlist(ws: Workspace) -> None:
    host = {
        "PATH": "/usr/bin",
        "HOME": "/home/o",
        "USER": "o",
        "LANG": "C.UTF-8",
        "AWS_SECRET_ACCESS_KEY": "nope",
        "PREFECT_API_KEY": "nope",
        "OMICSFLOW_TEST_SECRET": "nope",
        "PYTHONPATH": "/orchestrator/site",
    }
    env = build_pipeline_env(ws.spec("true"), Path("/s/base"), Path("/s/user-data"), host)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/o",
        "USER": "o",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMICSFLOW_TEST_TOKEN": ws.token,
        "LOMI_BASE_DIR": "/s/base",
        "LOMI_USER_DIR": "/s/user-data",
    }


def test_env_fills_path_home_user_when_the_host_has_none(ws: Workspace) -> None:
    env = build_pipeline_env(ws.spec("true"), Path("/b"), Path("/u"), {})
    assert env["PATH"].startswith("/usr/local/sbin")
    assert env["HOME"].startswith("/")
    assert env["USER"]
