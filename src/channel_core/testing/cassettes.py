"""vcrpy configuration that makes recorded cassettes safe to commit and production-shaped.

* Form fields holding credentials (``Token``, ``AppId``...) are replaced by
  placeholders in recorded and incoming requests alike, so matching still works.
* Request URIs are rewritten onto the channel's production host, so a cassette
  recorded from a local sandbox looks exactly like one recorded from the real API.
* Only an allow-list of request and response headers is kept: nothing that
  names the recording machine (``Host``, ``Server``, ``User-Agent``) survives.
* Request bodies are matched on their form fields, or on their JSON content, with datetimes
  normalised, so a "now" timestamp in a request does not break replay.
* JSON replies have the values of named fields (``access_token``) replaced by placeholders, and a
  sandbox's path prefix (``/shops/{domain}``) can be dropped from recorded URIs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["build_vcr", "cassette_config", "datetimes_normalized", "form_body_matcher", "redact_values"]

_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")
KEEP_REQUEST_HEADERS = frozenset({"content-type", "accept", "accept-language"})
KEEP_RESPONSE_HEADERS = frozenset({"content-type", "retry-after"})


def datetimes_normalized(text: str) -> str:
    return _DATETIME.sub("<datetime>", text)


def _body_text(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body)


def _json(text: str) -> Any:
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(datetimes_normalized(text))
    except ValueError:
        return None


def form_body_matcher(r1: Any, r2: Any) -> None:
    """vcrpy matcher: same form fields (or the same JSON document), datetimes ignored. Raises AssertionError on
    mismatch."""
    j1, j2 = _json(_body_text(r1.body)), _json(_body_text(r2.body))
    if j1 is not None or j2 is not None:
        if j1 != j2:
            raise AssertionError("JSON bodies differ")
        return
    f1 = {k: datetimes_normalized(v) for k, v in parse_qsl(_body_text(r1.body), keep_blank_values=True)}
    f2 = {k: datetimes_normalized(v) for k, v in parse_qsl(_body_text(r2.body), keep_blank_values=True)}
    if f1 != f2:
        raise AssertionError(f"form bodies differ: {sorted(set(f1.items()) ^ set(f2.items()))[:4]}")


def redact_values(text: str, values: Iterable[str], placeholder: str = "<REDACTED>") -> str:
    for value in values:
        if value:
            text = text.replace(value, placeholder)
    return text


def cassette_config(
    *,
    production_base_url: str,
    secret_form_fields: Iterable[str] = (),
    secret_values: Iterable[str] = (),
    record_mode: str = "none",
    secret_json_fields: Iterable[str] = (),
    strip_path_prefix: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``vcr.VCR(...)`` or ``use_cassette(...)``.

    :param production_base_url: where requests are shown going, whatever served them.
    :param secret_form_fields: form field names whose values become ``<FIELD>``.
    :param secret_values: literal values scrubbed from every body (echoed secrets).
    :param secret_json_fields: keys whose values become ``<KEY>`` wherever they appear in a JSON reply
        (minted tokens: ``access_token``, ``refresh_token``).
    :param strip_path_prefix: a leading path (a sandbox's ``/shops/{domain}``) removed from request URIs.
    """
    json_fields = frozenset(secret_json_fields)
    prod = urlsplit(production_base_url)
    fields = tuple(secret_form_fields)
    values = tuple(v for v in secret_values if v)

    def before_record_request(request: Any) -> Any:
        parts = urlsplit(request.uri)
        path = parts.path
        if strip_path_prefix and path.startswith(strip_path_prefix):
            path = path[len(strip_path_prefix) :] or "/"
        request.uri = urlunsplit((prod.scheme, prod.netloc, path, parts.query, ""))
        for name in list(request.headers):
            if name.lower() not in KEEP_REQUEST_HEADERS:
                del request.headers[name]
        if request.body:
            text = _body_text(request.body)
            pairs = parse_qsl(text, keep_blank_values=True)
            if pairs and any(k in fields for k, _ in pairs):
                from urllib.parse import urlencode

                text = urlencode([(k, f"<{k.upper()}>" if k in fields else v) for k, v in pairs])
            request.body = redact_values(text, values).encode("utf-8")
        return request

    def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
        headers = response.get("headers", {})
        response["headers"] = {k: v for k, v in headers.items() if k.lower() in KEEP_RESPONSE_HEADERS}
        body = response.get("body", {}).get("string")
        if isinstance(body, bytes) and json_fields:
            body = _redact_json(body, json_fields)
            response["body"]["string"] = body
        if isinstance(body, bytes) and values:
            response["body"]["string"] = redact_values(body.decode("utf-8", "replace"), values).encode()
        return response

    return {
        "record_mode": record_mode,
        "before_record_request": before_record_request,
        "before_record_response": before_record_response,
        "decode_compressed_response": True,
        "match_on": ["method", "scheme", "host", "port", "path", "query", "form_body"],
    }


def _redact_json(body: bytes, fields: frozenset[str]) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: f"<{k.upper()}>" if k in fields and isinstance(v, str) else scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    return json.dumps(scrub(data)).encode()


def build_vcr(cassette_library_dir: str, **config: Any) -> Any:
    """A ``vcr.VCR`` with :func:`form_body_matcher` registered as ``form_body``."""
    import vcr

    recorder = vcr.VCR(cassette_library_dir=cassette_library_dir, **config)
    recorder.register_matcher("form_body", form_body_matcher)
    return recorder
