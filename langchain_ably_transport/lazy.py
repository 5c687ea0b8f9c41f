"""Public names imported when first used (PEP 562), for a package whose names would otherwise load all it holds.

The standard library only: the package's own `__init__` uses it, and importing the package must stay light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, where: Mapping[str, str], namespace: dict[str, Any]
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package`: each name in `where` is imported from its module (relative to
    the package) on first use, then kept in `namespace` (the package's globals), so the next use is a plain lookup."""

    def get(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(module, package), name)
        return value

    def names() -> list[str]:
        return sorted(namespace["__all__"])

    return get, names
