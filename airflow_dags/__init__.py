"""The Airflow DAG: one task per shared step, each a single call into `shared_tasks`."""
