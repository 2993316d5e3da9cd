"""The registry: every method by name. TGPO's three (tgpo.methods.tgpo_family) and one per module of the
`baselines` package, each module declaring its specs in `METHODS`; the registry imports them on first use
(pkgutil over `baselines`, so adding a module adds a method). Registrants import only tgpo.methods.spec.
"""

from __future__ import annotations

import importlib
import pkgutil

from tgpo.methods.spec import MethodSpec

# modules (or packages, each of whose modules is one) that declare METHODS, in registration order
REGISTRANTS = ("tgpo.methods.tgpo_family", "baselines")
_REGISTRY: dict[str, MethodSpec] = {}
_LOADED = False


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add `spec` to the registry (idempotent for an equal spec; a different spec under a taken name fails)."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"register_method: a different method is already registered as {spec.name!r}")
    _REGISTRY[spec.name] = spec
    return spec


def registrant_modules() -> list[str]:
    """The modules of REGISTRANTS, a package standing for each of its modules (pkgutil, name order)."""
    names = []
    for name in REGISTRANTS:
        module = importlib.import_module(name)
        if hasattr(module, "__path__"):
            names += [info.name for info in pkgutil.iter_modules(module.__path__, prefix=f"{name}.")]
        else:
            names.append(name)
    return names


def _load_registrations() -> None:
    """Register the METHODS of every registrant module (once)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for name in registrant_modules():
        module = importlib.import_module(name)
        if not hasattr(module, "METHODS"):
            raise AttributeError(f"{name}: a registrant module declares its MethodSpecs in `METHODS`")
        for spec in module.METHODS:
            register_method(spec)


def list_methods() -> list[str]:
    """Names of every registered method, TGPO's first, then the baselines in registration order."""
    _load_registrations()
    return list(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """The spec registered as `name`; KeyError listing the known names otherwise."""
    _load_registrations()
    if name not in _REGISTRY:
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(list_methods())}")
    return _REGISTRY[name]
