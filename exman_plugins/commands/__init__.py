"""Built-in ``exman`` subcommands, each module a plugin implementing ``register_commands``."""
