"""`omicsflow llm set|show`: keys go in from the environment and never come back out."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.prefect_server import PrefectServer
from tests.support.serve_process import REPO_ROOT

pytestmark = pytest.mark.integration
KEY = "sk-test-0123456789abcdef-never-printed"


def _cli(server: PrefectServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": server.api_url, "MY_OPENAI_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "omicsflow.cli", "llm", *args], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_set_then_show_never_prints_the_key(prefect_server: PrefectServer) -> None:
    done = _cli(prefect_server, "set", "seqera", "openai", "--model", "gpt-4o-mini",
                "--key-env", "MY_OPENAI_KEY")
    assert done.returncode == 0, done.stderr
    shown = {json.loads(line)["integration"]: json.loads(line)
             for line in _cli(prefect_server, "show").stdout.splitlines()}
    assert shown["seqera"]["provider"] == "openai" and shown["seqera"]["model"] == "gpt-4o-mini"
    assert shown["seqera"]["has key"] == "yes"
    assert KEY not in done.stdout + done.stderr
    off = _cli(prefect_server, "set", "seqera", "none")
    assert off.returncode == 0
    after = [json.loads(x) for x in _cli(prefect_server, "show").stdout.splitlines()]
    seqera = next(x for x in after if x["integration"] == "seqera")
    assert seqera["provider"] == "none" and KEY not in json.dumps(after)


def test_an_unset_key_variable_is_refused(prefect_server: PrefectServer) -> None:
    res = _cli(prefect_server, "set", "local", "anthropic", "--key-env", "NOT_SET_ANYWHERE")
    assert res.returncode == 2 and "NOT_SET_ANYWHERE" in res.stdout
