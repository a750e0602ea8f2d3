"""The `nas` subcommands: each module parses its arguments, calls the engine in `nas/` and
prints; `nas.cli` gathers them."""
