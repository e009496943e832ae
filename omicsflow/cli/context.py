"""How CLI commands find the running `serve`: its home holds serve.json with what it uses."""

from __future__ import annotations

import json
import os
from pathlib import Path

from omicsflow.settings import get_settings

SERVE_FILE = "serve.json"


def write_serve_file(home: Path, values: dict[str, str]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{SERVE_FILE}.tmp"
    tmp.write_text(json.dumps(values, indent=2))
    tmp.replace(home / SERVE_FILE)


def adopt_serve_environment() -> None:
    """Use the services file, report store and Prefect API of the serve running in this home,
    unless the environment already says otherwise."""
    home = get_settings().home
    path = home / SERVE_FILE
    if not path.exists():
        return
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for key, value in values.items():
        if isinstance(value, str):
            os.environ.setdefault(key, value)
    get_settings.cache_clear()
