"""Pure failure taxonomy: who must fix a failed run. No Prefect, no I/O."""
