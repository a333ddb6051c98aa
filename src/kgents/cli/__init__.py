"""The `kgents` command line (typer + rich). Only this package and the workbench import UI libraries."""
