"""Asynchronous Slurm operations (submit, list, cancel, accounting, nodes), run on the cluster as the caller."""
