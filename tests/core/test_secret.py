from __future__ import annotations

import pickle

import pytest
import structlog

from channel_core import Secret
from channel_core.logs import REDACTED, get_logger, redact_processor


def test_secret_never_shows_its_value() -> None:
    token = Secret("tok-ABC-123")
    assert "tok-ABC-123" not in str(token)
    assert "tok-ABC-123" not in repr(token)
    assert "tok-ABC-123" not in f"{token}"
    assert "tok-ABC-123" not in repr({"token": token})
    assert token.reveal() == "tok-ABC-123"
    with pytest.raises(TypeError):
        pickle.dumps(token)


def test_secret_in_exception_text_is_masked() -> None:
    token = Secret("tok-ABC-123")
    try:
        raise ValueError(f"bad token {token}")
    except ValueError as exc:
        assert "tok-ABC-123" not in str(exc)


def test_secret_in_logs_is_masked() -> None:
    token = Secret("tok-ABC-123")
    with structlog.testing.capture_logs() as logs:
        get_logger("t").info("connecting", token=token, settings={"token": token})
    assert "tok-ABC-123" not in repr(logs)


def test_redact_processor_drops_credential_keys() -> None:
    event = {"event": "x", "token": "raw", "AppId": "raw2", "api_key": "k", "order": "1", "auth": Secret("s")}
    out = redact_processor(None, "info", event)
    assert out["token"] == REDACTED and out["AppId"] == REDACTED and out["api_key"] == REDACTED
    assert out["auth"] == REDACTED and out["order"] == "1"
