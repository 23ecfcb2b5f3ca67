"""Sub-commands that live in a module of their own: each exposes ``add_parser(subparsers)``."""
