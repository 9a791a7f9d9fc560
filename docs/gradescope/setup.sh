#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder's image (the network is there).
# It installs convcheck from the wheel in the autograder zip into its own virtual environment.
# AUTOGRADER is Gradescope's /autograder; set it to try the scripts in another folder.
set -euo pipefail
AUTOGRADER=${AUTOGRADER:-/autograder}
SOURCE="$AUTOGRADER/source"
# torch's CPU-only wheels: an index URL from PyTorch's "Get started" page keeps the image small;
# left empty, pip takes torch from its default index (on Linux, wheels with the CUDA libraries).
TORCH_INDEX=${TORCH_INDEX:-}

# convcheck needs Python 3.11 or later: the first interpreter found that is one.
PYTHON=""
for candidate in python3 python3.13 python3.12 python3.11; do
    if "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
    then PYTHON=$candidate; break; fi
done
if [ -z "$PYTHON" ]; then
    apt-get update
    apt-get install -y python3.11 python3.11-venv
    PYTHON=python3.11
fi
"$PYTHON" -m venv "$AUTOGRADER/venv"
PIP=("$AUTOGRADER/venv/bin/python" -m pip install --quiet)
"${PIP[@]}" "torch==2.13.0" ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
"${PIP[@]}" "$SOURCE"/convcheck-*.whl
# The seed, if the zip has one, is for the grader's eyes only.
if [ -f "$SOURCE/seed" ]; then chmod 600 "$SOURCE/seed"; fi
# Import the suite once, so nothing is compiled at grading time.
"$AUTOGRADER/venv/bin/convcheck" --version
