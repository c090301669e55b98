"""A run and its steps: the workspace, pull, change, publish, restore."""
