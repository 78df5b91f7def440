"""Committed cassettes look like production traffic and hold no secret."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.oxatis.conftest import CASSETTES, REPLAY_TOKEN, SANDBOX_TOKEN

FILES = sorted(CASSETTES.glob("*.yaml"))


def test_cassettes_exist() -> None:
    assert len(FILES) >= 7


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_cassette_has_no_secret_and_no_loopback(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for forbidden in (
        SANDBOX_TOKEN,
        REPLAY_TOKEN,
        "the-real-token",
        "wrong-token",
        "127.0.0.1",
        "localhost",
        "::1",
    ):
        assert forbidden not in text, f"{forbidden!r} found in {path.name}"
    data = yaml.safe_load(text)
    for interaction in data["interactions"]:
        request = interaction["request"]
        assert request["uri"].startswith("https://webservices.oxatis.com/webservices/httpservices/")
        assert set(h.lower() for h in request["headers"]) <= {"content-type", "accept", "accept-language"}
        assert set(h.lower() for h in interaction["response"]["headers"]) <= {"content-type", "retry-after"}
        body = request["body"] or ""
        token = re.search(r"(?:^|&)Token=([^&]*)", body)
        assert token is None or token.group(1) == "%3CTOKEN%3E"
        app_id = re.search(r"(?:^|&)AppId=([^&]*)", body)
        assert app_id is None or app_id.group(1) == "%3CAPPID%3E"
