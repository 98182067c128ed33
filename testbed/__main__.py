"""`python -m testbed` is the `testbed` command."""

import sys

from .cli import main

sys.exit(main())
