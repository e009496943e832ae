"""Process-wide settings, read from the environment (prefix OMICSFLOW_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMICSFLOW_", extra="ignore")

    home: Path = Field(
        default=Path(".omicsflow"), description="Data dir: ledger DB, logs, scratch."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite under the home."
    )
    report_store: Literal["local", "firestore"] = "local"
    services: Path | None = Field(default=None, description="Path of the services TOML file.")
    firestore_collection: str = "reports"
    # Names this installation's Prefect objects, so two installations (or test runs) can
    # share one Prefect server without picking up each other's flow runs.
    instance: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")

    # Local pipelines.
    max_workers: int = Field(default=2, ge=1, le=64)
    sandbox_enabled: bool = True
    bwrap: str = "bwrap"
    cache_dir: Path | None = None

    # The embedded Prefect server (used when PREFECT_API_URL is unset).
    prefect_port: int = Field(default=4200, ge=1, le=65535)
    # How often the served runner looks for runs to start; 1 s keeps pickup latency low.
    runner_poll_seconds: float = Field(default=1.0, gt=0)
    # Flow-run processes the runner may hold at once (local pipelines are capped separately).
    runner_limit: int = Field(default=8, ge=1)
    # Intake threads creating flow runs. On the embedded (SQLite) Prefect server more than
    # two only add lock contention (bench/README.md); raise it with a PostgreSQL server.
    intake_workers: int = Field(default=2, ge=1, le=64)

    # Recovery: a running row whose heartbeat is older than this is considered orphaned.
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    stale_after_seconds: float = Field(default=30.0, gt=0)
    recovery_interval_seconds: float = Field(default=10.0, gt=0)
    outbox_interval_seconds: float = Field(default=2.0, gt=0)
    cancel_grace_seconds: float = Field(default=1.5, ge=0)

    # Remote backends: how often the poller looks at every in-flight run (the push webhook
    # triggers an immediate poll of one run in between).
    remote_poll_seconds: float = Field(default=30.0, gt=0)
    webhook_port: int | None = Field(default=None, ge=0, le=65535)
    webhook_host: str = "127.0.0.1"
    webhook_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _absolute_home(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        return self

    @property
    def ledger_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'omicsflow.db'}"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def scratch_dir(self) -> Path:
        return self.home / "scratch"

    @property
    def data_dir(self) -> Path:
        """Per-report base and user-data dirs live here (the 'patient base')."""
        return self.home / "data"

    @property
    def attempt_deployment(self) -> str:
        return "attempt" if self.instance == "default" else f"attempt-{self.instance}"

    @property
    def local_pipelines_limit(self) -> str:
        return "omicsflow-local-pipelines" + (
            "" if self.instance == "default" else f"-{self.instance}"
        )

    @property
    def effective_max_workers(self) -> int:
        # Without the sandbox two runs of one pipeline could overwrite each other's files.
        return self.max_workers if self.sandbox_enabled else 1


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
