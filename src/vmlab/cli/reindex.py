"""`python -m vmlab.cli.reindex`: rewrite cli/listing.py, the index `vmlab --help` lists commands from
(cli/lazy.py), from vmlab's own registrars and those of the labs of this checkout."""

from __future__ import annotations

from vmlab.cli.lazy import LISTING_FILE, listing, render
from vmlab.cli.main import all_registrars


def main() -> None:
    """Rewrite listing.py from vmlab's own registrars and those of the labs of this checkout."""
    LISTING_FILE.write_text(render(listing(all_registrars())))
    print(f"wrote {LISTING_FILE}")


if __name__ == "__main__":
    main()
