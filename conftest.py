"""The suite's own tests run through convcheck's pytest plugin (properties/plugin.py), which
the project installs under the `pytest11` entry point `convcheck`: nothing to load here.
pyproject.toml's `convcheck_self_tests = true` turns the plugin on for plain `pytest` in this
folder (the reference target, plus the self-tests)."""
