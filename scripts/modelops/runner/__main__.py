"""`python -m modelops.runner ARGS` is `modelops serve ARGS`."""

import sys

from modelops.cli import main

sys.argv[1:1] = ["serve"]
main()
