"""The services file: one TOML table per service, validated with errors that name the field."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from omicsflow.errors import ConfigError

SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")

Seconds = Annotated[int, Field(ge=0, le=90 * 86400)]


class ServicePolicy(BaseModel):
    """Retry and timing policy shared by every backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cooldown_seconds: Seconds = 0
    max_retries: Annotated[int, Field(ge=1, le=100)] = 3
    retry_delay_seconds: Seconds = 600
    temp_fail_exit_code: Annotated[int, Field(ge=1, le=255)] | None = 75
    temp_fail_retry_delay_seconds: Seconds = 3600
    failed_sync_retry_delay_seconds: Seconds = 86400
    max_system_retries: Annotated[int, Field(ge=0, le=100)] = 3
    system_retry_delay_seconds: Seconds = 300
    timeout_seconds: Annotated[int, Field(ge=1, le=30 * 86400)] = 86400


class ServiceConfig(ServicePolicy):
    name: str
    backend: Literal["local", "healthomics", "seqera", "elastic-blast"] = "local"
    # Local backend.
    command: tuple[str, ...] = ()
    workdir: Path | None = None
    env: dict[str, str] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict)
    sandbox_write_whitelist: tuple[str, ...] = ()
    # Remote backends: their own settings table, validated by the backend itself.
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SERVICE_NAME.match(v):
            raise ValueError("service names use letters, digits, '.', '_' and '-' (max 63)")
        return v

    @field_validator("command", mode="before")
    @classmethod
    def _argv(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise ValueError(
                'command must be an argv list such as ["bash", "run.sh"], not a shell string'
            )
        return v

    @field_validator("command")
    @classmethod
    def _argv_items(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            if not item or "\x00" in item:
                raise ValueError("command items must be non-empty strings without NUL bytes")
        return v

    @field_validator("env")
    @classmethod
    def _env_roles(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = set(v) - {"base_dir", "user_dir"}
        if unknown:
            raise ValueError(f"env only maps base_dir and user_dir, not {sorted(unknown)}")
        for role, name in v.items():
            if not ENV_NAME.match(name):
                raise ValueError(f"env.{role} = {name!r} is not a valid environment variable name")
        return v

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not ENV_NAME.match(name):
                raise ValueError(
                    f"environment key {name!r} is not a valid environment variable name"
                )
            if "\x00" in value:
                raise ValueError(f"environment.{name} contains a NUL byte")
        return v

    @field_validator("sandbox_write_whitelist")
    @classmethod
    def _whitelist(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for entry in v:
            p = Path(entry)
            if p.is_absolute() or ".." in p.parts or not entry.strip():
                raise ValueError(
                    f"sandbox_write_whitelist entry {entry!r} must be a path inside the pipeline "
                    "directory (relative, no '..')"
                )
        return v

    @model_validator(mode="after")
    def _backend_fields(self) -> ServiceConfig:
        if self.backend == "local" and not self.command:
            raise ValueError("a local service needs command = [argv...]")
        return self

    @property
    def base_dir_env(self) -> str:
        return self.env.get("base_dir", "OMICSFLOW_BASE_DIR")

    @property
    def user_dir_env(self) -> str:
        return self.env.get("user_dir", "OMICSFLOW_USER_DIR")


class ServicesFile(BaseModel):
    path: Path
    services: dict[str, ServiceConfig]

    def get(self, name: str) -> ServiceConfig | None:
        return self.services.get(name)


def _resolve_local(svc: ServiceConfig, base: Path) -> ServiceConfig:
    """Resolve argv paths and the workdir relative to the services file, not the cwd.

    Program names such as "bash" stay as they are; an item is a path when it exists next to
    the services file (argv[0] only when it contains a "/").
    """
    argv = list(svc.command)
    first_path: Path | None = None
    for i, item in enumerate(argv):
        if i == 0 and "/" not in item:
            continue  # a program looked up on PATH
        candidate = base / item  # an absolute item stays itself
        if not candidate.exists():
            continue
        argv[i] = str(candidate.resolve())
        # The first path is the pipeline's own file: its directory is the workdir, which the
        # sandbox makes visible (read-only) even when it lives under the host's /tmp.
        first_path = first_path or candidate.resolve()
    if svc.workdir is not None:
        workdir = svc.workdir if svc.workdir.is_absolute() else (base / svc.workdir).resolve()
    elif first_path is not None:
        workdir = first_path.parent
    else:
        workdir = base.resolve()
    return svc.model_copy(update={"command": tuple(argv), "workdir": workdir})


def parse_services(text: str, path: Path) -> ServicesFile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    table = raw.get("services")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"{path}: needs at least one [services.<name>] table")
    services: dict[str, ServiceConfig] = {}
    problems: list[str] = []
    for name, body in table.items():
        if not isinstance(body, dict):
            problems.append(f"services.{name}: must be a table")
            continue
        try:
            svc = ServiceConfig.model_validate({**body, "name": name})
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                where = f"services.{name}.{loc}" if loc else f"services.{name}"
                problems.append(f"{where}: {err['msg']}")
            continue
        if svc.backend == "local":
            svc = _resolve_local(svc, path.parent)
            missing = [a for a in svc.command[1:] if a.startswith("/") and not Path(a).exists()]
            if missing:
                problems.append(f"services.{name}.command: {missing[0]} does not exist")
        services[name] = svc
    if problems:
        raise ConfigError(f"{path}: invalid services file:\n  " + "\n  ".join(problems))
    return ServicesFile(path=path, services=services)


def load_services(path: Path) -> ServicesFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read services file {path}: {exc.strerror}") from exc
    return parse_services(text, path)
