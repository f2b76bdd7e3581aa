"""`python -m orchestrator_client ...`: the command line (see `orchestrator_client.cli`)."""

import sys

from orchestrator_client.cli import main

sys.exit(main())
