"""`maam models pull` installs a pair together: interrupted or failing between (or while moving) the
two models of a pair, the repository keeps neither new model and every previous one; and the pull's
failures are one-line messages (offline switch and mirror of the hub honoured, build failures not
reported as downloads, missing libraries named)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.model_repository import ModelRepository
from services.models.errors import ModelsError, building, fetching, require_export_extra
from services.models.export.faces import install_faces
from services.models.pull import Pullable, Upstream, pull
from tests.models.test_faces_pull import _arcface_like, _scrfd_like

UPSTREAM = Upstream("url", "https://example.invalid/pack.zip", "tag v1", library_id="test pack")


def _table(tmp_path: Path, interrupt: bool) -> dict[str, Pullable]:
    det, rec = _scrfd_like(tmp_path / "det.onnx"), _arcface_like(tmp_path / "rec.onnx")

    def pull_pair(repository: Path, upstream: Upstream) -> None:
        install_faces(repository, det, rec, source="test", license="test", names=("pair_det", "pair_rec"))
        if interrupt:
            raise KeyboardInterrupt  # Ctrl-C after both were exported, before they are installed

    def pull_half(repository: Path, upstream: Upstream) -> None:
        from services.models.importer import import_onnx

        import_onnx(repository, "pair_det", det, "face_detection", source="test", replace=True,
                    params={"format": "scrfd"})
        raise KeyboardInterrupt  # between the two models

    return {
        "pair": Pullable({"pair_det": "face_detection", "pair_rec": "face_embedding"}, "a pair", "test",
                         pull_pair, UPSTREAM, needs=()),
        "half": Pullable({"pair_det": "face_detection", "pair_rec": "face_embedding"}, "a pair", "test",
                         pull_half, UPSTREAM, needs=()),
    }


def _visible(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_interrupt_between_the_two_models_installs_neither(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    with pytest.raises(KeyboardInterrupt):
        pull(repo, "half", _table(tmp_path, interrupt=False))
    assert _visible(repo) == []  # no model, no staging directory left
    with pytest.raises(KeyboardInterrupt):
        pull(repo, "pair", _table(tmp_path, interrupt=True))
    assert _visible(repo) == []


def test_interrupt_while_moving_the_pair_keeps_the_previous_pair(tmp_path: Path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    table = _table(tmp_path, interrupt=False)
    assert pull(repo, "pair", table) == ("pair_det", "pair_rec")
    installed = ModelRepository(repo)
    assert installed.errors == {} and {m.name for m in installed.installed()} == {"pair_det", "pair_rec"}
    assert installed.get("pair_det").meta.params["upstream"]["revision"] == "tag v1"
    before = {n: (repo / n / "maam.json").stat().st_mtime_ns for n in ("pair_det", "pair_rec")}

    # Ctrl-C at the moment the second new model would be moved into place.
    real_rename = Path.rename

    def rename(self: Path, target):  # type: ignore[no-untyped-def]
        if Path(target) == repo / "pair_rec" and self.parent.name.startswith(".pull-"):
            raise KeyboardInterrupt
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        pull(repo, "pair", table)
    monkeypatch.undo()
    assert _visible(repo) == ["pair_det", "pair_rec"]
    after = {n: (repo / n / "maam.json").stat().st_mtime_ns for n in ("pair_det", "pair_rec")}
    assert after == before  # the previous pair, both of it
    assert ModelRepository(repo).errors == {}


def test_the_hub_offline_switch_skips_the_probe(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.invalid")
    ran = []
    with fetching("cached weights"):
        ran.append(True)  # the hub client reads its cache; nothing refuses before it
    assert ran
    with pytest.raises(ModelsError, match="HF_HUB_OFFLINE is set") as info, fetching("cached weights"):
        raise FileNotFoundError("not in the cache")
    assert "\n" not in str(info.value)


def test_the_hub_endpoint_is_the_host_probed(monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.invalid:8443")
    with pytest.raises(ModelsError, match=r"mirror\.invalid is unreachable") as info, fetching("weights"):
        raise AssertionError("the body must not run when the endpoint is unreachable")
    assert "\n" not in str(info.value)


def test_a_build_failure_is_not_a_download_failure() -> None:
    with pytest.raises(ModelsError, match="could not build ViT from the downloaded weights") as info, \
            building("ViT"):
        raise RuntimeError("size mismatch for head.weight\nmore detail")
    assert "download" not in str(info.value).replace("downloaded", "") and "\n" not in str(info.value)


def test_a_missing_library_is_one_line_naming_the_install() -> None:
    require_export_extra("pulling clip", ("torch", "open_clip"))  # installed here: no error
    with pytest.raises(ModelsError, match=r"pulling clip needs no-such-lib from the \[export\] extra") as info:
        require_export_extra("pulling clip", ("torch", "open_clip", "no-such-lib"))
    assert "\n" not in str(info.value) and "pip install" in str(info.value)
