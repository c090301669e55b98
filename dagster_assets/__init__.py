"""The Dagster definitions: one asset per shared step, each a single call into `shared_tasks`."""
