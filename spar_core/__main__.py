import sys

from spar_core.cli import main

sys.exit(main())
