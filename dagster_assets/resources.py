"""What the Dagster definitions read: the pipeline's settings as a resource, and how to execute."""

from typing import Literal

import dagster as dg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared_tasks.settings import ENV_PREFIX, Settings, load_settings


class PipelineSettings(dg.ConfigurableResource):
    """The steps' settings, read from the environment when a step runs, not when code loads.

    The code server loads the definitions without credentials or a workspace at hand; only the
    step's process (or pod, with the settings ConfigMap and Secret) has them.
    """

    env_file: str | None = None

    def load(self) -> Settings:
        return load_settings(self.env_file)


class DagsterSettings(BaseSettings):
    """Shapes the Dagster job only; read when the definitions load."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    executor: Literal["in_process", "k8s"] = "in_process"
    observe_schedule: str = "*/5 * * * *"
    peer_interval_seconds: int = Field(default=30, ge=1, description="How often Dagster reads Airflow's runs.")
