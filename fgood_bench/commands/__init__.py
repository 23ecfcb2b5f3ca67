"""Sub-commands with their own module: each exposes ``add_parser(subparsers)``."""
