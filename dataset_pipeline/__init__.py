"""The control side: the CLI, the embedded local stack and everything run on a person's machine."""
