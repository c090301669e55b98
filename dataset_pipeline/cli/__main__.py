"""`python -m dataset_pipeline.cli`, as the console script."""

from dataset_pipeline.cli import app

app()
