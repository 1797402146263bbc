"""`python -m zkref` is the `zkref` command."""

import sys

from zkref.cli import main

sys.exit(main())
