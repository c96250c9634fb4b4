"""The `corral` command: thin dispatch to each stage's own main."""
