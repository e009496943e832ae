"""`omicsflow llm show|set`: the bring-your-own-key LLM configuration per integration.

Keys are read from an environment variable (never from the command line, where shell
history and `ps` would keep them) and stored in the integration's Prefect block.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Literal

from cyclopts import App, Parameter

INTEGRATIONS = ("healthomics", "seqera", "local", "blast")
Integration = Literal["healthomics", "seqera", "local", "blast"]

llm_app = App(name="llm", help="LLM fallback for failure triage (per integration).")


@llm_app.command(name="show")
def llm_show() -> int:
    """Each integration's provider and model; keys only as "has key: yes/no"."""
    from blocks.llm import load_llm_block

    for integration in INTEGRATIONS:
        block = load_llm_block(integration)
        shown = block.describe() if block else {"integration": integration, "provider": "none"}
        print(json.dumps(shown))
    return 0


@llm_app.command(name="set")
def llm_set(
    integration: Integration,
    provider: Literal["none", "bedrock", "openai", "anthropic"],
    *,
    model: str | None = None,
    key_env: Annotated[str | None, Parameter(help="environment variable holding the key")] = None,
    base_url: str | None = None,
    region: str | None = None,
) -> int:
    """Configure one integration; provider "none" turns it off and clears model and key."""
    from blocks.llm import save_llm_config

    key = None
    if key_env:
        key = os.environ.get(key_env)
        if not key:
            print(f"environment variable {key_env} is empty or unset")
            return 2
    block = save_llm_config(
        integration, provider, model_id=model, api_key=key, base_url=base_url, region=region
    )
    print(json.dumps(block.describe()))
    return 0
