"""`python -m coordinator`: run a coordinator process (see coordinator.server)."""

import sys

from coordinator.server import main

sys.exit(main())
