"""``lazy_import``: a module imported on its first attribute access (``importlib.util.LazyLoader``).

Plugins that need torch only to fit or generate import it this way, so planning a run, a dry run and a rerun
of a finished run (which load no model: docs/architecture.md, "Identity and keys") do not pay torch's import.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    """``name`` as a module whose code runs on first attribute access (the loaded module when already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
