"""The one error type of model provisioning: its message is meant for the operator, as is."""

from __future__ import annotations


class ModelsError(Exception):
    """Provisioning failed for a reason a person can act on (missing extra, no network, bad graph)."""


EXPORT_EXTRA_HINT = "pip install 'maam[export]'  (or, in a checkout: pip install -e '.[export]')"


def require_export_extra(what: str) -> None:
    """Raises ModelsError naming the install command when torch (the [export] extra) is absent."""
    import importlib.util

    missing = [m for m in ("torch",) if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelsError(f"{what} needs {', '.join(missing)} from the [export] extra: {EXPORT_EXTRA_HINT}")
