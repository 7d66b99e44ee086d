"""The client side of the service keys: the header a caller sends, and the warning for an exposed open service."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from services.common.service_auth import is_loopback, key_headers, warn_if_exposed
from services.common.settings import Settings
from services.dam.core.config import DamSettings


def test_key_headers() -> None:
    assert key_headers(SecretStr("k1")) == {"X-API-Key": "k1"} == key_headers("k1")
    assert key_headers(None) == {} == key_headers("") == key_headers(SecretStr(""))


def test_every_service_reads_the_keys_it_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAAM_NDD__API_KEY", "n-key")
    monkeypatch.setenv("MAAM_CMRR__API_KEY", "c-key")
    for settings in (Settings(), DamSettings()):
        assert key_headers(settings.ndd.api_key) == {"X-API-Key": "n-key"}
        assert key_headers(settings.cmrr.api_key) == {"X-API-Key": "c-key"}
        assert "n-key" not in repr(settings)  # a SecretStr: never in logs


def test_an_open_service_beyond_loopback_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("ndd")
    with caplog.at_level(logging.WARNING):
        warn_if_exposed("ndd", "127.0.0.1", None, "MAAM_NDD__API_KEY")
        warn_if_exposed("ndd", "0.0.0.0", SecretStr("k"), "MAAM_NDD__API_KEY")
        assert not caplog.records
        warn_if_exposed("ndd", "0.0.0.0", None, "MAAM_NDD__API_KEY")
    assert "set MAAM_NDD__API_KEY" in caplog.text
