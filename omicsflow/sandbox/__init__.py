"""Run one local pipeline attempt, sandboxed with bubblewrap or direct, killable as a whole.

Modules: spec (the values), validation (paths and whitelist), env (the allowlisted
environment), bwrap (the command line, pure), scratch (copy in/out, sweep), process (killing a
group and its descendants), logfile (markers, EROFS hints, tail), runner (ties them together).
"""

from omicsflow.sandbox.bwrap import build_bwrap_argv, bwrap_available
from omicsflow.sandbox.process import kill_process_group
from omicsflow.sandbox.runner import PipelineRunner
from omicsflow.sandbox.spec import PipelineResult, PipelineSpec

__all__ = [
    "PipelineResult",
    "PipelineRunner",
    "PipelineSpec",
    "build_bwrap_argv",
    "bwrap_available",
    "kill_process_group",
]
