"""The `tokenopt` subcommands, one module each: `register(subparsers)` adds the
command's arguments and handler; the work is imported only when the command runs."""

import argparse
from collections.abc import Callable

#: What a command runs: parsed arguments in, exit code out.
Handler = Callable[[argparse.Namespace], int]
