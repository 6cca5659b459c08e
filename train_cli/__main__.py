"""Entry point of the ``ganstyle`` command. Each subcommand lives in its own module in this
package, exposing ``add_parser(subparsers)`` (which sets ``func``) and ``main(args)``."""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand → module in this package. Modules are imported lazily so `ganstyle --help` is quick.
COMMANDS = {
    "demo": "demo",
    "train": "train",
    "train-decoder": "train_decoder",
    "stylize": "stylize",
    "optimize": "optimize",
    "sheet": "sheet",
    "library": "library",
    "push": "hub",
    "pull": "hub",
    "models": "hub",
    "data": "data",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganstyle", description="GAN style transfer: train, stylise, share.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    seen = set()
    for module_name in dict.fromkeys(COMMANDS.values()):
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__package__}.{module_name}":
                continue  # command not built yet
            raise
        module.add_parser(sub)
        seen.add(module_name)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..core.errors import GanstyleError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GanstyleError as e:
        print(f"ganstyle {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ganstyle {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
