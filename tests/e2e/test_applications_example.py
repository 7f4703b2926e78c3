"""docs/examples/scopes.sh runs as a user would run it and says what it should."""

from __future__ import annotations

from test_utilities_examples import run_example


def test_scopes_example_runs(site):
    result = run_example("docs/examples/scopes.sh")
    assert result.returncode == 0, result.stderr
    said = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert "firecrest-jobs" not in said["granted"].split()
    assert "firecrest-read" in said["granted"].split()
    assert said["read"] == "200"
    assert said["submit"] == ('{"description":"This request needs the scope firecrest-jobs, which the application this '
                              'token was issued to was not granted"} 403')
