"""The lean HTTP path encodes bodies byte for byte as httpx does (recorded cassettes match them)."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from channel_core.http import content_charset, encode_form


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=5))
def test_a_form_is_encoded_as_httpx_encodes_it(form: dict[str, str]) -> None:
    assert encode_form(form) == httpx.Request("POST", "http://x/", data=form).read()


def test_an_xml_payload_and_non_ascii_text_are_encoded_as_httpx_encodes_them() -> None:
    form = {"Token": "t+/=ok", "Data": '<OrderId a="1">\\n<OxID>10 0</OxID>&amp;</OrderId>', "Note": "Sébastien ☃"}
    assert encode_form(form) == httpx.Request("POST", "http://x/", data=form).read()


def test_the_charset_is_read_as_httpx_reads_it() -> None:
    for value in ("text/xml; charset=utf-8", 'text/xml;charset="ISO-8859-1"', "text/xml", "", "a; b=c; CHARSET=UTF-16"):
        response = httpx.Response(200, headers={"Content-Type": value} if value else {})
        assert content_charset(response) == response.charset_encoding
