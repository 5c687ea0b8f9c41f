"""The API reference covers every public name with a docstring and matches the code."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_api", DOCS / "generate_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_is_documented():
    generator = _generator()
    missing = [f"{package}.{name}" for package in generator.PACKAGES
               for name, obj in generator.public_names(package)
               if (inspect.isclass(obj) or inspect.isfunction(obj)) and not (obj.__doc__ or "").strip()]
    assert missing == []


def test_the_committed_api_reference_is_current():
    assert (DOCS / "api.md").read_text() == _generator().render(), "run `python docs/generate_api.py`"
