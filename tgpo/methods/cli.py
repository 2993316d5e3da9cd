"""`python -m tgpo methods [--verbose]`: print every registered method name, one per line."""

from __future__ import annotations

import argparse

from tgpo.methods import get_method, list_methods


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true", help="also print the display name and a one-line summary")


def run(args: argparse.Namespace) -> int:
    for name in list_methods():
        if args.verbose:
            spec = get_method(name)
            print(f"{name}\t{spec.display_name}\t{spec.summary}")
        else:
            print(name)
    return 0
