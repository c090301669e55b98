"""The pipeline's steps as they run inside a worker pod; no orchestrator is imported here."""
