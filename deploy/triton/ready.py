"""Health check of the compose Triton services: healthy only when every model whose weights are installed in
the repository is loaded and READY on the server (Triton's own /v2/health/ready is not enough: with
--strict-readiness=false it answers 200 with nothing loaded, and with true it never does while a config's
weights are missing). No model installed at all is unhealthy too, with the command that installs them.

    python3 ready.py --url http://127.0.0.1:8000 --repository /models

Standard library only: it runs with the Triton image's python3. Exit 0 healthy, 1 not (the reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path


def installed(repository: Path) -> list[str]:
    """Model directories with a config.pbtxt and a numeric version directory holding a file (weights, or a
    link to them in the generated CPU repository)."""
    names = []
    for model in sorted(p for p in repository.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (model / "config.pbtxt").is_file():
            continue
        versions = [v for v in model.iterdir() if v.is_dir() and v.name.isdigit()]
        if any(f.exists() for v in versions for f in v.iterdir() if not f.name.startswith(".")):
            names.append(model.name)
    return names


def check(url: str, repository: Path, timeout: float = 4.0) -> str | None:
    """None when healthy, else why not."""
    wanted = installed(repository)
    if not wanted:
        return f"no model is installed in {repository}: run `docker compose run --rm models install-shipped`"
    request = urllib.request.Request(f"{url}/v2/repository/index", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            index = json.load(reply)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"Triton does not answer at {url}: {exc}"
    states = {m.get("name"): (m.get("state", ""), m.get("reason", "")) for m in index}
    pending = []
    for name in wanted:
        state, reason = states.get(name, ("not listed", ""))
        if state != "READY":
            pending.append(f"{name} ({state or 'unknown'}{': ' + reason if reason else ''})")
    if pending:
        return f"{len(pending)} of {len(wanted)} installed models are not ready: {', '.join(pending)}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--repository", type=Path, default=Path("/models"))
    args = parser.parse_args()
    problem = check(args.url, args.repository)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
