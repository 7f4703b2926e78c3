"""Browser tests (a package, so that its conftest is not the `conftest` module the other suites import)."""
