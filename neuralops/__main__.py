"""``python -m neuralops ...`` (what ``torchrun --nproc_per_node N -m neuralops train ...`` runs)."""

import sys

from neuralops.cli import main

if __name__ == "__main__":
    sys.exit(main())
