"""What one pipeline attempt is (PipelineSpec) and how it ended (PipelineResult).

Both are plain frozen values so the attempt flow can build a spec from the services file and
a report, hand it to the runner, and store the result, without knowing how it was executed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Shell conventions, so a sandboxed and a direct run report the same numbers as bash would.
EXIT_TIMEOUT = 124  # what coreutils `timeout` returns; our timeout kill reports it too
EXIT_CANNOT_EXECUTE = 126
EXIT_COMMAND_NOT_FOUND = 127
EXIT_SIGNAL_BASE = 128  # a process killed by signal N reports 128 + N


@dataclass(frozen=True)
class PipelineSpec:
    """One attempt of a local pipeline.

    `argv` is never a shell string: argv[1:] are already-resolved paths and values, so nothing
    from a report document is ever interpreted by a shell here.
    """

    argv: tuple[str, ...]
    # The pipeline repo dir: the pipeline's cwd, read-only inside the sandbox.
    workdir: Path
    # Real per-report dirs; inside the sandbox the pipeline sees scratch copies of them.
    base_dir: Path
    user_dir: Path
    # {"base_dir": "LOMI_BASE_DIR", "user_dir": "LOMI_USER_DIR"}: the env var names that carry
    # the (scratch or real) paths, because existing scripts already read those names.
    env_names: Mapping[str, str]
    # Service env values, validated by the services file loader.
    extra_env: Mapping[str, str]
    # Paths relative to workdir the pipeline may write; inside the sandbox they are private
    # per-run copies (see scratch.prepare_repo_writes).
    write_whitelist: tuple[str, ...]
    # The attempt's log, appended live (the UI tails it while the attempt runs).
    log_path: Path
    timeout_seconds: float
    # Host cache dir, bound read-write at $HOME/.cache inside the sandbox so tool caches
    # (pip, HuggingFace, BiocFileCache's SQLite) stay warm and writable.
    cache_dir: Path | None = None


@dataclass(frozen=True)
class PipelineResult:
    # 128+signal when killed by a signal (shell convention); 124 when our timeout killed it.
    exit_code: int
    timed_out: bool
    # True only when the cancel_event made us kill it (a kill from elsewhere shows as 128+sig).
    cancelled: bool
    elapsed_seconds: float
    # Last ~64 KiB of the log, decoded with errors="replace" (logs are not guaranteed UTF-8).
    log_tail: str
    sandboxed: bool
