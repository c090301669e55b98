"""Clients of the orchestrators' public APIs: Airflow's REST API v2 and Dagster's GraphQL.

Imported by the control side and the two adapters, so it imports no orchestrator, no adapter and
neither `shared_tasks` nor `dataset_pipeline`: only httpx, tenacity, pydantic and the standard
library (import-linter holds it to that).

Why our own thin clients and not the official ones (measured with Airflow 3.3.2, Dagster 1.13.27):

- `apache-airflow-client` 3.3.2: importing `airflow_client.client` takes 1.25–1.7 s (512 modules)
  against 0.55 s for httpx, tenacity and pydantic, which we load anyway. It has no call for
  `POST /auth/token` (its login API is the browser's `/api/v2/auth/login` redirect) and no token
  refresh. Its generated models are strict where we need tolerance: a run whose `state` is not in
  its enum, or an answer without `dag_versions`, fails to parse (ValidationError), so a minor
  Airflow release that adds a state breaks every listing (how dagster-airlift broke on Airflow 3).
  It does keep `logical_date: None`, and offers urllib3 retries, but not "a repeated trigger is the
  same run" (409 = ours) or waiting out a busy database only for safe calls: we would wrap it anyway.
- `dagster-graphql`'s `DagsterGraphQLClient` 1.13.27: importing it imports dagster (456 dagster
  modules, 2.9 s), which the layering forbids outside the Dagster adapter. It has no
  re-execution, no run lookup by tags (so a lost launch answer cannot be found), no run events,
  step stats or pools, and no retry: every failure becomes one error carrying the whole query.

We use about a dozen endpoints and parse only the fields we read, so keeping them here is less
code than adapting either client, and a shape change elsewhere in an answer does not reach us.
"""

from orchestrator_clients.errors import OrchestratorApiError

__all__ = ["OrchestratorApiError"]
