"""Load the checks plugin (checks/harness/plugin.py): `--impl` and the Hypothesis profiles.

It lives at the root so that a bare `pytest --impl reference` knows the option.
"""

pytest_plugins = ["checks.harness.plugin"]
