"""convcheck inside a notebook: `import convcheck`, then `convcheck.check()` in a cell (or the
`%convcheck` line magic) checks the functions and classes the kernel defines and shows the
report card under the cell. The implementation is properties.live; this module only names it.
"""
from properties.live import CheckReport, check, load_ipython_extension

__all__ = ["CheckReport", "check", "load_ipython_extension"]
