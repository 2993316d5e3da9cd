"""`python -m tgpo <verb>`: see `tgpo.cli`."""

import sys

from tgpo.cli import main

if __name__ == "__main__":
    sys.exit(main())
