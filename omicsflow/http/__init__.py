"""HTTP surfaces omicsflow serves itself (Prefect's incoming webhooks are Cloud-only)."""
