"""The Oxatis HTTP form interface at the byte level: request XML out, reply envelopes in.

Requests are ``Data`` XML documents with no target namespace (oxatis-api.md §1.3).
Replies are bare ``DataResultService`` documents whose ``StatusCode`` decides the
outcome (§1.4, §1.7). Every reply is parsed with a hardened lxml parser: no DTD
loading, no entity expansion, no network; a reply that declares a DTD at all is
refused, which stops entity bombs and external entities before they start.
"""

from __future__ import annotations

import codecs
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from channel_core.errors import (
    AuthenticationError,
    ChannelAPIError,
    ClientError,
    NotFoundError,
    PayloadError,
    QuotaExhaustedError,
    ServerError,
)

__all__ = [
    "CHANNEL",
    "Envelope",
    "decode_body",
    "element_to_dict",
    "format_datetime",
    "local_name",
    "parse_envelope",
    "parse_xml",
    "request_xml",
]

CHANNEL = "oxatis"
XMLNS = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'

OK = 200
WARNING = 300
ERROR = 500
UNAUTHORIZED = 503
QUOTA_EXHAUSTED = 504
MAINTENANCE = 600
SUB_RECORD_NOT_FOUND = 1001

_local = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        _local.parser = parser
    return parser


def format_datetime(value: datetime) -> str:
    """Oxatis datetimes are naive ``YYYY-MM-DDThh:mm:ss`` (oxatis-api.md §5.3)."""
    return value.replace(microsecond=0, tzinfo=None).isoformat()


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    return escape(str(value), {'"': "&quot;", "'": "&apos;"})


def _render(fields: Iterable[tuple[str, Any]]) -> str:
    out: list[str] = []
    for name, value in fields:
        if value is None:
            continue
        if isinstance(value, Mapping):
            out.append(f"<{name}>{_render(value.items())}</{name}>")
        elif isinstance(value, list):
            out.append(f"<{name}>{_render(value)}</{name}>")
        else:
            out.append(f"<{name}>{_value(value)}</{name}>")
    return "".join(out)


def request_xml(root: str, fields: Iterable[tuple[str, Any]] = ()) -> str:
    """The ``Data`` document: ``root`` with children in the given (WSDL) order; ``None`` omitted."""
    body = _render(fields)
    if not body:
        return f'<?xml version="1.0" encoding="utf-8"?><{root} {XMLNS} />'
    return f'<?xml version="1.0" encoding="utf-8"?><{root} {XMLNS}>{body}</{root}>'


_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""", re.IGNORECASE)


def decode_body(body: bytes, charset: str | None = None) -> bytes:
    """Reply bytes as UTF-8 with no encoding declaration, whatever the declaration claimed.

    .NET services often declare ``encoding="utf-16"`` on a UTF-8 body (oxatis-api.md
    §7.3). The HTTP charset decides first; then a byte-order mark; then UTF-8 if the
    bytes are valid UTF-8; only then the declaration. A body none of these can decode
    is malformed.
    """
    declared = _DECLARATION.match(body)
    match = _ENCODING.search(declared.group(0)) if declared is not None else None
    name = match.group(1).lower() if match is not None else b"utf-8"
    if name in (b"utf-8", b"utf8") and (charset or "utf-8").lower() in ("utf-8", "utf8"):
        return body  # the common case: lxml reads the declaration itself
    candidates: list[str] = []
    if charset:
        candidates.append(charset)
    if body.startswith(codecs.BOM_UTF8):
        candidates.insert(0, "utf-8-sig")
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates.insert(0, "utf-16")
    candidates.append("utf-8")
    if match is not None:
        candidates.append(match.group(1).decode("ascii"))
    for encoding in candidates:
        try:
            text = body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        text = text.lstrip("\ufeff")
        return _DECLARATION.sub(b"", text.encode("utf-8"), count=1)
    return body


def parse_xml(body: bytes, *, operation: str, charset: str | None = None) -> etree._Element:
    """Parse reply bytes safely. HTML and empty bodies are server errors; DTDs are refused."""
    if body[:5].lstrip().startswith((b"<?xml", b"<?XML")) or body.startswith(
        (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
    ):
        body = decode_body(body, charset)
    stripped = body.lstrip()
    if not stripped:
        raise ServerError("empty reply body", channel=CHANNEL, operation=operation)
    head = stripped[:512].lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        raise ServerError("HTML page instead of XML", channel=CHANNEL, operation=operation)
    if b"<!doctype" in head or b"<!entity" in stripped[:4096].lower():
        raise PayloadError("reply declares a DTD or entities, which are refused", operation=operation)
    try:
        root = etree.fromstring(stripped, _parser())
    except etree.XMLSyntaxError as exc:
        raise PayloadError(f"malformed XML ({exc.msg})", operation=operation) from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise PayloadError("reply declares a DTD or entities, which are refused", operation=operation)
    return root


@dataclass(frozen=True, slots=True)
class Envelope:
    status_code: int
    sub_code: int | None
    error_details: str | None
    data: etree._Element | None


def local_name(element: etree._Element) -> str:
    """The tag without any namespace; empty for comments and processing instructions."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]


def parse_envelope(body: bytes, *, operation: str, charset: str | None = None) -> Envelope:
    """Parse a ``DataResultService`` reply and raise the error its ``StatusCode`` means."""
    root = parse_xml(body, operation=operation, charset=charset)
    if local_name(root) != "DataResultService":
        raise PayloadError(f"expected DataResultService, got <{local_name(root)}>", operation=operation)
    fields: dict[str, etree._Element] = {local_name(child): child for child in root}
    raw_status = (fields["StatusCode"].text or "").strip() if "StatusCode" in fields else ""
    try:
        status = int(raw_status)
    except ValueError:
        raise PayloadError("StatusCode missing or not a number", operation=operation) from None
    sub_text = (fields["StatusSubCode"].text or "").strip() if "StatusSubCode" in fields else ""
    sub_code = int(sub_text) if sub_text.lstrip("-").isdigit() else None
    details_el = fields.get("ErrorDetails")
    details = (details_el.text or "").strip() or None if details_el is not None else None
    envelope = Envelope(status, sub_code, details, fields.get("Data"))
    _raise_for_status(envelope, operation)
    return envelope


def _raise_for_status(envelope: Envelope, operation: str) -> None:
    status = envelope.status_code
    if status in (OK, WARNING):
        return
    detail = envelope.error_details or "no details"
    kwargs: dict[str, Any] = {
        "channel": CHANNEL,
        "operation": operation,
        "status_code": status,
        "sub_code": envelope.sub_code,
    }
    error: ChannelAPIError
    if status == UNAUTHORIZED:
        error = AuthenticationError(
            f"Oxatis refused the token or AppId, or the token's user lacks the rights for this call ({detail})",
            **kwargs,
        )
    elif status == QUOTA_EXHAUSTED:
        error = QuotaExhaustedError("the daily Oxatis web-services quota is spent (StatusCode 504)", **kwargs)
    elif status == MAINTENANCE:
        error = ServerError(f"Oxatis web services are in maintenance ({detail})", request_sent=False, **kwargs)
    elif status == ERROR and envelope.sub_code == SUB_RECORD_NOT_FOUND:
        error = NotFoundError(f"record not found ({detail})", **kwargs)
    elif status == ERROR:
        error = ClientError(f"Oxatis reported an error: {detail}", **kwargs)
    else:
        error = ServerError(f"unexpected StatusCode {status}: {detail}", **kwargs)
    raise error


def element_to_dict(element: etree._Element, lists: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Flatten an entity element into ``{child tag: text}``.

    ``lists`` maps container tags (``OrderItems``) to their item tag (``Item``);
    those become lists of dicts, recursively with the same map. Nil and empty
    elements are left out, as real replies omit null fields.
    """
    lists = lists or {}
    out: dict[str, Any] = {}
    for child in element:
        tag = child.tag
        if type(tag) is not str:  # comments and processing instructions
            continue
        if tag[0] == "{":
            tag = tag.rpartition("}")[2]
        if len(child):
            item_tag = lists.get(tag)
            if item_tag is None:
                out[tag] = element_to_dict(child, lists)
            else:
                out[tag] = [element_to_dict(item, lists) for item in child if local_name(item) == item_tag]
            continue
        if tag in lists:
            out[tag] = []
            continue
        text = child.text
        if text:  # a nil element (xsi:nil="true") has no text
            out[tag] = text
    return out
