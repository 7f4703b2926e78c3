"""Slurm, as the services meet it: each remote Slurm command as a small object (argv + parser), by concern.

Compute and storage both run Slurm (jobs, and transfers as jobs on the xfer partition) and services never import
each other, so this lives in common. Checked against a real Slurm 22.05. Quoting and the error mapping live in
common/commands.py; what these modules add is what Slurm itself does with a value once it has the word
(sbatch's `--export` list, sacct's times, hostlists) and parsers that user-controlled text (job names, comments,
paths) cannot shift.

    fields.py      job ids and squeue's JSON fields, shared by the others
    jobs.py        our own jobs: their comment tags, found again after a restart (squeue), cancelled (scancel)
    submit.py      sbatch: the submission and its `--export`/`--dependency` rules
    queue.py       squeue: the queue in squeue's text form, which jobs slurmctld holds
    jobfiles.py    scontrol show job: a job's script and output paths, the end of its output
    accounting.py  sacct: finished jobs, time arguments
    resources.py   scontrol show node|partition|reservation, and hostlists
"""
