"""Versions as Git commits and DVC objects: the repository, the remote, history."""
