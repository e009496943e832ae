"""The pipeline's environment: an allowlist, never a copy of the orchestrator's.

The orchestrator's environment holds cloud credentials, API keys and the Prefect API key;
a pipeline (teammates' code) gets only what it needs to run, plus the service's own values.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path

from omicsflow.sandbox.spec import PipelineSpec

# Taken from the orchestrator's environment when set; nothing else ever is.
ALLOWED_HOST_VARS = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def build_pipeline_env(
    spec: PipelineSpec,
    base_path: Path,
    user_path: Path,
    host_env: Mapping[str, str],
) -> dict[str, str]:
    """Pure: the exact environment the pipeline sees.

    Precedence (later wins): host allowlist < PYTHONDONTWRITEBYTECODE < extra_env < the
    base/user path variables (validation already refuses extra_env setting those names).
    """
    env: dict[str, str] = {}
    for name in ALLOWED_HOST_VARS:
        value = host_env.get(name)
        if value:
            env[name] = value
    env.setdefault("PATH", DEFAULT_PATH)
    if "HOME" not in env or "USER" not in env:
        # Services run from systemd units that may not set HOME/USER; scripts rely on them.
        entry = _passwd_entry()
        if entry is not None:
            env.setdefault("HOME", entry.pw_dir)
            env.setdefault("USER", entry.pw_name)
    # The repo is read-only in the sandbox: CPython's __pycache__ writes would fail (EROFS)
    # and, in direct mode, would race between workers.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(spec.extra_env)
    paths = {"base_dir": base_path, "user_dir": user_path}
    for key, name in spec.env_names.items():
        env[name] = str(paths[key])
    return env


def _passwd_entry() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(os.getuid())
    except KeyError:
        return None
