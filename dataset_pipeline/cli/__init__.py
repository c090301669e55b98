"""`dataset-pipeline`: the local stack, a direct run, history and verify.

The commands live in modules by what they are about; they are registered here, in the order
`--help` lists them.
"""

from dataset_pipeline.cli.app import app, schema_app, stack_app
from dataset_pipeline.cli.report_commands import compare_cmd, demo, history_cmd, verify_cmd
from dataset_pipeline.cli.run_commands import adopt_cmd, migrate_cmd, run
from dataset_pipeline.cli.schema_commands import init_cmd, schema_infer
from dataset_pipeline.cli.stack_commands import stack_down, stack_status, stack_up
from dataset_pipeline.cli.version_commands import cutover_cmd, restore_cmd, validate_cmd

stack_app.command("up")(stack_up)
stack_app.command("down")(stack_down)
stack_app.command("status")(stack_status)
app.command("run")(run)
app.command("history")(history_cmd)
app.command("verify")(verify_cmd)
app.command("compare")(compare_cmd)
app.command("migrate")(migrate_cmd)
app.command("adopt")(adopt_cmd)
app.command("validate")(validate_cmd)
app.command("restore")(restore_cmd)
app.command("cutover")(cutover_cmd)
app.command("demo")(demo)
app.command("init")(init_cmd)
schema_app.command("infer")(schema_infer)

__all__ = ["app"]
