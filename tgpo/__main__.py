"""`python -m tgpo <verb>`: see `tgpo.cli`. The numerics are pinned first, before anything imports torch
(`tgpo.numerics`), so every verb and every process it starts computes the same bits on any x86-64 CPU."""

import sys

from tgpo.numerics import pin_process_environment

pin_process_environment()

from tgpo.cli import main  # noqa: E402  (after the pin: a verb may import torch)

if __name__ == "__main__":
    sys.exit(main())
