"""The pipeline project and its description: settings, the steps' records, the cut-over."""
