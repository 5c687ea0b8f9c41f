"""Generate `docs/api.md` from the public API's docstrings: `python docs/generate_api.py`.

The public API is what each package's `__all__` exports, then the docstrings of the error tree and of the SDK
fixes; `tests/test_docs.py` fails when the committed reference is stale or a public name has no docstring.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

PACKAGES = [
    "langchain_ably_transport",
    "langchain_ably_transport.session",
    "langchain_ably_transport.graph",
    "langchain_ably_transport.checkpoint",
    "langchain_ably_transport.codec",
    "langchain_ably_transport.codec.langchain",
    "langchain_ably_transport.wire",
    "langchain_ably_transport.sdk",
    "langchain_ably_transport.server",
    "langchain_ably_transport.devserver",
]
# Modules whose docstring is reference in itself: the error tree, and the catalogue of SDK fixes.
MODULE_DOCS = ["langchain_ably_transport.errors", "langchain_ably_transport.sdk.fixes"]
OUTPUT = Path(__file__).with_name("api.md")


def public_names(package: str) -> list[tuple[str, object]]:
    module = importlib.import_module(package)
    return [(name, getattr(module, name)) for name in getattr(module, "__all__", [])]


def describe(name: str, obj: object) -> list[str]:
    doc = inspect.getdoc(obj) or ""
    summary = doc.split("\n\n")[0].replace("\n", " ") if doc else ""
    if inspect.isclass(obj) or inspect.isfunction(obj):
        try:
            signature = str(inspect.signature(obj))
        except (TypeError, ValueError):
            signature = "(...)"
        kind = "class" if inspect.isclass(obj) else "def"
        head = f"### `{kind} {name}{_compact(signature)}`"
    else:
        head = f"### `{name}`"
    lines = [head, "", summary or "A type alias.", ""]
    if inspect.isclass(obj):
        for method_name, method in inspect.getmembers(obj, inspect.isfunction):
            if method_name.startswith("_") or method.__qualname__.split(".")[0] != obj.__name__:
                continue
            method_doc = (inspect.getdoc(method) or "").split("\n\n")[0].replace("\n", " ")
            lines.append(f"- `{method_name}`: {method_doc}")
        lines.append("")
    return lines


def _compact(signature: str) -> str:
    signature = re.sub(r" at 0x[0-9a-f]+>", ">", signature)  # a default function's repr: no memory address
    return signature if len(signature) <= 110 else signature[:107] + "...)"


def render() -> str:
    lines = ["# API reference", "", "Generated from docstrings by `python docs/generate_api.py`; do not edit.", ""]
    for package in PACKAGES:
        lines += [f"## `{package}`", ""]
        for name, obj in public_names(package):
            lines += describe(name, obj)
    for module in MODULE_DOCS:
        lines += [f"## `{module}`", "", inspect.getdoc(importlib.import_module(module)) or "", ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")
