"""`python -m backends.worker RUN_DIR`: see backends/worker/run.py."""

import sys

from backends.worker.run import main

sys.exit(main())
