"""The `tokenopt` subcommands, one module each: `register(subparsers)` adds the
command's arguments and handler; the work is imported only when the command runs."""
