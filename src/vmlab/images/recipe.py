"""Load a recipe from vm-images/<name>/recipe.toml and hash it for the cache key."""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmlab.errors import UsageError


def recipes_root() -> Path:
    """vm-images/ of the checkout (VMLAB_IMAGES_RECIPES overrides, for installed copies)."""
    env = os.environ.get("VMLAB_IMAGES_RECIPES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "vm-images"


def recipe_names() -> list[str]:
    return sorted(p.parent.name for p in recipes_root().glob("*/recipe.toml"))


@dataclass(frozen=True)
class Recipe:
    name: str
    directory: Path
    data: dict[str, Any]

    def section(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise UsageError(f"{self.directory / 'recipe.toml'}: [{key}] must be a table")
        return value

    def files_digest(self) -> dict[str, str]:
        """sha256 of every file of the recipe: any edit makes a new cache entry."""
        out: dict[str, str] = {}
        for p in sorted(self.directory.rglob("*")):
            if p.is_file():
                out[str(p.relative_to(self.directory))] = hashlib.sha256(p.read_bytes()).hexdigest()
        return out


def load_recipe(name: str) -> Recipe:
    d = recipes_root() / name
    f = d / "recipe.toml"
    if not f.is_file():
        known = ", ".join(recipe_names()) or "none"
        raise UsageError(f"unknown image {name!r} (known: {known})", hint="vmlab image build tiny")
    try:
        data = tomllib.loads(f.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{f}: not valid TOML: {e}") from e
    return Recipe(name, d, data)
