"""The target's tests inside the project: the same module the installed `convcheck` command
runs (properties/suite.py): one item per property, and the LeNet checks (marked `lenet`)."""
from properties.suite import *  # noqa: F401,F403
