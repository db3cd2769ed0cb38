"""The API reference page, written from the package's ``__all__`` lists.

Every name in ``sklearn_meanfield.__all__`` and in the ``__all__`` of each
public submodule (``datasets``, ``metrics``, ``plotting``, ...) gets an
autosummary entry, and so a page of its own: a public name added to the
package appears in the reference without editing the docs. Names are grouped
by what they are (estimators, cross-validated estimators, kernels, functions,
exceptions), in the order of ``SECTIONS``.
"""

import importlib
import inspect
import pkgutil

PACKAGE = "sklearn_meanfield"


def public_submodules(package=PACKAGE):
    """Names of the public submodules of ``package`` (no ``_``, no ``__main__``)."""
    pkg = importlib.import_module(package)
    return sorted(
        f"{package}.{info.name}"
        for info in pkgutil.iter_modules(pkg.__path__)
        if not info.name.startswith("_")
    )


def public_names(package=PACKAGE):
    """``{module: [names]}`` for the package and its public submodules."""
    names = {package: list(importlib.import_module(package).__all__)}
    for module in public_submodules(package):
        names[module] = list(getattr(importlib.import_module(module), "__all__", []))
    return names


def _kind(obj):
    from sklearn.base import BaseEstimator

    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "Exceptions"
        if issubclass(obj, BaseEstimator):
            if obj.__name__.endswith("CV"):
                return "Cross-validated estimators"
            return "Estimators"
        if hasattr(obj, "value") and hasattr(obj, "gradient"):
            return "Kernels"
        if obj.__name__.endswith("Display"):
            return "Displays"
        return "Classes"
    if callable(obj):
        return "Functions"
    return "Other objects"


SECTIONS = [
    "Estimators",
    "Cross-validated estimators",
    "Kernels",
    "Displays",
    "Classes",
    "Functions",
    "Exceptions",
    "Other objects",
]

#: what the sections of the top-level package are about
_INTROS = {
    "Estimators": "scikit-learn estimators fitted by particle flows.",
    "Cross-validated estimators": (
        "``alpha`` chosen by cross-validation along a warm-started "
        "regularisation path (:doc:`user_guide/tuning`)."
    ),
    "Kernels": (
        "Point-spread functions for :class:`SparseSpikeDeconvolver` "
        "(:doc:`user_guide/spikes`); any object with ``value`` and "
        "``gradient`` methods works as well."
    ),
    "Functions": "Regularisation paths (:doc:`user_guide/tuning`).",
}


def _underline(text, char):
    return f"{text}\n{char * len(text)}\n"


def api_rst(package=PACKAGE):
    """The reStructuredText of the API reference page."""
    out = [
        ".. _api:\n",
        _underline("API reference", "="),
        "Every public object of :mod:`sklearn_meanfield`, one page each, "
        "generated from its docstring.\n",
    ]
    for module, names in public_names(package).items():
        mod = importlib.import_module(module)
        out.append(_underline(f"``{module}``", "-"))
        out.append(f".. automodule:: {module}\n")
        out.append(f".. currentmodule:: {module}\n")
        groups = {}
        for name in names:
            groups.setdefault(_kind(getattr(mod, name)), []).append(name)
        for section in SECTIONS:
            if section not in groups:
                continue
            if module == package:
                out.append(_underline(section, "~"))
                if section in _INTROS:
                    out.append(_INTROS[section] + "\n")
            out.append(".. autosummary::\n   :toctree: generated/\n   :nosignatures:\n")
            out.extend(f"   {name}" for name in groups[section])
            out.append("")
    return "\n".join(out) + "\n"
