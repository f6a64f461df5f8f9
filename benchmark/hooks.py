"""Named, removable hooks and weight edits (after diffusers' ``HookRegistry``, docs/architecture.md).

Every eraser that attaches to a loaded pipeline keeps one ``HookSet``: each hook or weight edit has a
name, ``remove(name)`` detaches one, ``clear()`` detaches all and restores every edited parameter bit for
bit. Erasers never keep their own handle lists.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from .lazy import lazy_import

torch = lazy_import("torch")  # imported when a hook is first used (a rerun loads no model)


class HookSet:
    """Named forward hooks, forward pre-hooks and parameter edits on modules of a pipeline."""

    def __init__(self) -> None:
        self._handles: dict[str, Any] = {}
        self._saved: dict[str, tuple[torch.nn.Parameter, torch.Tensor]] = {}

    # ---- hooks ------------------------------------------------------------------------------------
    def pre(self, name: str, module: torch.nn.Module, fn: Callable, with_kwargs: bool = False) -> None:
        """``module.register_forward_pre_hook(fn)`` under ``name`` (a name is used once)."""
        self._check_new(name)
        self._handles[name] = module.register_forward_pre_hook(fn, with_kwargs=with_kwargs)

    def post(self, name: str, module: torch.nn.Module, fn: Callable, with_kwargs: bool = False) -> None:
        """``module.register_forward_hook(fn)`` under ``name``."""
        self._check_new(name)
        self._handles[name] = module.register_forward_hook(fn, with_kwargs=with_kwargs)

    # ---- weight edits -----------------------------------------------------------------------------
    def edit(self, name: str, parameter: torch.nn.Parameter, value: torch.Tensor) -> None:
        """Set ``parameter`` to ``value`` in place, keeping the original (the first one) for ``remove``."""
        if name not in self._saved:
            self._saved[name] = (parameter, parameter.detach().clone())
        with torch.no_grad():
            parameter.copy_(value.to(parameter.dtype))

    def original(self, name: str) -> torch.Tensor | None:
        """The value an edited parameter had before its first edit (None if never edited)."""
        saved = self._saved.get(name)
        return saved[1] if saved else None

    # ---- removal ----------------------------------------------------------------------------------
    def remove(self, name: str) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.remove()
        saved = self._saved.pop(name, None)
        if saved is not None:
            parameter, value = saved
            with torch.no_grad():
                parameter.copy_(value)

    def clear(self) -> None:
        """Detach every hook and restore every edited parameter."""
        for name in list(self._handles) + list(self._saved):
            self.remove(name)

    def names(self) -> list[str]:
        return sorted(set(self._handles) | set(self._saved))

    def __contains__(self, name: str) -> bool:
        return name in self._handles or name in self._saved

    def __len__(self) -> int:
        return len(self._handles) + len(self._saved)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __enter__(self) -> "HookSet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.clear()

    def _check_new(self, name: str) -> None:
        if name in self._handles:
            raise KeyError(f"hook {name!r} is already attached; remove it first")
