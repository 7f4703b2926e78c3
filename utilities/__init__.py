"""Synchronous filesystem operations and small transfers, run on the cluster as the caller."""
