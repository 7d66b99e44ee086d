"""The settings root: one scheme, MAAM_<SECTION>__<KEY>, and old names refused with the new one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.common.settings import (
    AnnotationServiceSettings,
    RenamedSettingError,
    Settings,
    check_renamed_env,
    renamed_in,
    settings_problems,
)


def test_sections_nest_with_two_underscores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAM_INFERENCE__BACKEND", "triton")
    monkeypatch.setenv("MAAM_MEDIA__MAX_IMAGE_PIXELS", "1234")
    monkeypatch.setenv("MAAM_LOG__LEVEL", "debug")
    monkeypatch.setenv("MAAM_DATA_DIR", "/srv/maam")
    settings = Settings()
    assert settings.inference.backend == "triton"
    assert settings.media.max_image_pixels == 1234
    assert settings.log.level == "DEBUG"
    assert str(settings.data_dir) == "/srv/maam"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("MAAM_INFERENCE_BACKEND", "MAAM_INFERENCE__BACKEND"),
        ("MAAM_TRITON_URL", "MAAM_INFERENCE__TRITON_URL"),
        ("MAAM_ONNX_SPIN_WAIT", "MAAM_INFERENCE__ONNX_SPIN_WAIT"),
        ("MAAM_LOG_FORMAT", "MAAM_LOG__FORMAT"),
        ("MAAM_DATABASE_URL", "MAAM_DAM__DATABASE_URL"),
        ("MAAM_ANNOTATION_MODEL_TIMEOUT_S", "MAAM_ANNOTATION__MODEL_TIMEOUT_S"),
        ("MAAM_NDD_FLAT_MAX_VECTORS", "MAAM_NDD__FLAT_MAX_VECTORS"),
        ("MAAM_CMRR_NPROBE", "MAAM_CMRR__NPROBE"),
        ("MAAM_DAM_WORKERS", "MAAM_DAM__WORKERS"),
    ],
)
def test_an_old_name_is_refused_with_the_new_one(monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    assert renamed_in({old: "1"}) == {old: new}
    monkeypatch.setenv(old, "1")
    with pytest.raises(RenamedSettingError, match=f"{old} is now {new}"):
        Settings()


@pytest.mark.parametrize(
    "name",
    ["MAAM_DAM__WORKERS", "MAAM_ANNOTATION__PORT", "MAAM_DATA_DIR", "MAAM_MODEL_REPOSITORY", "MAAM_PUBLISH_DAM_PORT",
     "MAAM_MODELS_DIR", "MAAM_TEST_ELASTICSEARCH_URL", "MAAM_GPU_SUITE_IMAGES", "MAAM_ES_INDEX_PATTERN", "HOME"],
)
def test_current_names_pass(name: str) -> None:
    assert renamed_in({name: "x"}, ["cmrr"]) == {}


def test_bare_names_count_only_for_the_service_that_read_them() -> None:
    environ = {"MODEL": "albef", "PORT": "9000"}
    assert renamed_in(environ) == {}
    check_renamed_env(environ)  # any other service: none of its business
    with pytest.raises(RenamedSettingError, match="MODEL is now MAAM_CMRR__MODEL"):
        check_renamed_env(environ, ["cmrr"])


def test_every_old_name_set_is_named_at_once() -> None:
    with pytest.raises(RenamedSettingError) as raised:
        check_renamed_env({"MAAM_TRITON_URL": "x", "MAAM_NDD_HNSW_M": "8"})
    assert "MAAM_NDD_HNSW_M is now MAAM_NDD__HNSW_M" in str(raised.value)
    assert "MAAM_TRITON_URL is now MAAM_INFERENCE__TRITON_URL" in str(raised.value)


def test_the_metrics_port_follows_the_grpc_port_unless_set() -> None:
    assert AnnotationServiceSettings().metrics_port_for(50051) == 51051
    assert AnnotationServiceSettings().metrics_port_for(50052) == 51052
    assert AnnotationServiceSettings().metrics_port_for(65000) == 64000
    assert AnnotationServiceSettings(metrics_port=9464).metrics_port_for(50052) == 9464
    assert AnnotationServiceSettings(metrics_port=0).metrics_port_for(50052) == 0


def test_validation_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAM_INFERENCE__BACKEND", "gpu")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert settings_problems(raised.value).startswith("MAAM_INFERENCE__BACKEND: ")
