"""Wire-level fakes of remote platforms: real HTTP servers on 127.0.0.1, ephemeral ports."""
