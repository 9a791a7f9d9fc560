"""`python -m properties.grade SUBMISSION...`: the grader's command (properties.grading.cli),
kept under its first name; `convcheck grade` is the same command."""
import sys

from properties.grading.cli import main

if __name__ == "__main__":
    sys.exit(main())
