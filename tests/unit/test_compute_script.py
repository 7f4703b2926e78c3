"""compute/script.py: whether a script leaves its output where Slurm puts it by default."""

from __future__ import annotations

import pytest

from compute.script import default_output


@pytest.mark.parametrize("script", [
    "#!/bin/bash\necho hi\n",
    "#!/bin/bash\n#SBATCH --job-name=x\n#SBATCH -N 1 --time=5\n\necho hi\n#SBATCH --output=late.txt\n",
    "#!/bin/bash\n#SBATCH --partition=normal\n# a comment\n#SBATCH --ntasks=2\nsrun true\n",
    "#!/bin/bash\n#SBATCH --open-mode=append\ntrue\n",
])
def test_default_output(script):
    assert default_output(script.encode())


@pytest.mark.parametrize("script", [
    "#!/bin/bash\n#SBATCH --output=out.txt\n",
    "#!/bin/bash\n#SBATCH -o out.txt\n",
    "#!/bin/bash\n#SBATCH -oout.txt\n",
    "#!/bin/bash\n#SBATCH --out=x\n",
    "#!/bin/bash\n#SBATCH --err x\n",
    "#!/bin/bash\n#SBATCH -e err.txt\n",
    "#!/bin/bash\n#SBATCH --array=1-3\n",
    "#!/bin/bash\n#SBATCH -a 1-3\n",
    "#!/bin/bash\n#SBATCH -N1 -o x\n",
    "#!/bin/bash\n#PBS -o out.txt\n",
    "#!/bin/bash\n#BSUB -o out.txt\n",
    "#!/bin/bash\n#SBATCH -N 1\n#SBATCH hetjob\n#SBATCH -N 1\n",
])
def test_named_output_is_left_to_slurm(script):
    assert not default_output(script.encode())
