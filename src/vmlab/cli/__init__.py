"""The Typer CLI: parses options, calls the library, renders tables or --json. Only this package prints."""
