"""The `ssnas` subcommands, one module per family; `ssnas.cli` assembles them."""
