"""What the Dagster definitions read: the pipeline's settings as a resource, and how to execute.

No resource takes config from a launch: a run's settings (which origin, which bucket, whose name
on the commit) come from the code location's environment, the same for every run, so whoever may
launch a run cannot point it at another file, store or author. The launchable config is the
change itself (`records`), checked by the steps.
"""

from typing import Any, Literal

import dagster as dg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared_tasks.project.settings import ENV_PREFIX, Settings, load_builtin_settings


class PipelineSettings(dg.ConfigurableResource):
    """The steps' settings, read from the environment when a step runs, not when code loads.

    The code server loads the definitions without credentials or a workspace at hand; only the
    step's process (or pod, with the settings ConfigMap and Secret) has them. It has no config
    field: a launch's `resources` config cannot reach the settings.
    """

    def load(self) -> Settings:
        return load_builtin_settings()


class NoStoredOutputs(dg.ConfigurableIOManager):
    """The IO manager: the steps hand nothing to each other through it (the run's workspace carries
    the data, each asset returns only metadata), so there is nothing to store and no `base_dir`
    for a launch to point somewhere. Anything handed to it is a bug, refused."""

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is not None:
            raise dg.Failure(f"{context.step_key} returned a value to store; the steps keep theirs in the workspace")

    def load_input(self, context: dg.InputContext) -> Any:
        raise dg.Failure(f"input {context.name} asked for; the steps read theirs from the workspace")


RESOURCES: dict[str, Any] = {"pipeline_settings": PipelineSettings(), "io_manager": NoStoredOutputs()}


class DagsterSettings(BaseSettings):
    """Shapes the Dagster job only; read when the definitions load."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    executor: Literal["in_process", "k8s"] = "in_process"
    observe_schedule: str = "*/5 * * * *"
    peer_interval_seconds: int = Field(default=30, ge=1, description="How often Dagster reads Airflow's runs.")
