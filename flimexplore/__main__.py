"""``python -m flimexplore`` runs the command line."""

import sys

from flimexplore.cli import main

sys.exit(main())
