"""Lazy plugin registries, after lm-eval's ``Registry`` (lm_eval/api/registry.py).

Entries are either objects or ``"package.module:attr"`` strings imported on first use, so listing
or validating a run imports no heavy backend. Third-party packages add entries through the
entry-point groups ``erasebench.erasers``, ``erasebench.suites``, ``erasebench.metrics`` and
``erasebench.models`` without editing this project.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from importlib.metadata import entry_points
from typing import Any, Generic, Iterator, TypeVar

from .errors import UnknownPluginError

T = TypeVar("T")


def import_object(target: str) -> Any:
    """Import ``"module:attr"`` (attr may be dotted)."""
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Name -> plugin, with lazy ``module:attr`` placeholders and entry-point discovery."""

    def __init__(self, kind: str, entry_point_group: str, base_cls: type | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.base_cls = base_cls
        self._entries: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._entry_points_loaded = False

    def register(self, name: str, target: Any, *, replace: bool = False) -> None:
        with self._lock:
            if name in self._entries and not replace and self._entries[name] != target:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = target

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._entries:
            raise UnknownPluginError(self.unknown_message(name))
        entry = self._entries[name]
        if isinstance(entry, str) and ":" in entry:
            entry = import_object(entry)
            if self.base_cls is not None and isinstance(entry, type) and not issubclass(entry, self.base_cls):
                raise TypeError(f"{self.kind} {name!r} must subclass {self.base_cls.__name__}")
            with self._lock:
                self._entries[name] = entry
        return entry

    def unknown_message(self, name: str) -> str:
        known = self.names()
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(known) or '(none)'}."
