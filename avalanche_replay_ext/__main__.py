"""``python -m avalanche_replay_ext``: the ``avalanche-replay`` command line (see ``cli``)."""

import sys

from .cli import main

sys.exit(main())
