"""Reply variants a real Oxatis store may send and the sandbox's default does not (oxatis-api.md §7).

Each is a switch (``SandboxConfig.variants``) applied to every successful reply:

* ``namespaced`` — a default namespace on ``DataResultService`` (so on every element);
* ``utf16_declaration`` — ``encoding="utf-16"`` declared on a UTF-8 body (a .NET artefact, §7.3);
* ``no_page_information`` — summary lists without ``PageInformation`` (HARLY treats it as an error);
* ``unknown_elements`` — elements no source names, first and last in every entity;
* ``reordered`` — the fields of every entity in reverse order (lists keep their order).
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

__all__ = ["VARIANTS", "apply_variants"]

VARIANTS = frozenset({"namespaced", "utf16_declaration", "no_page_information", "unknown_elements", "reordered"})
NAMESPACE = "http://webservices.oxatis.com/"
_LISTS = frozenset({"OrderItems", "BundledItems", "OrderTaxDetails", "OrderSummaries", "OrderProgressStateLogs",
                    "ProgressStateList", "OptionValueArray"})  # fmt: skip


def _entities(root: etree._Element) -> Iterable[etree._Element]:
    data = next((child for child in root if child.tag == "Data"), None)
    if data is None:
        return []
    return [el for el in data.iter() if len(el) and el.tag not in _LISTS and el.tag != "Data"]


def apply_variants(body: bytes, variants: Iterable[str]) -> bytes:
    wanted = set(variants)
    unknown = wanted - VARIANTS
    if unknown:
        raise ValueError(
            f"unknown sandbox variants: {', '.join(sorted(unknown))} (known: {', '.join(sorted(VARIANTS))})"
        )
    if not wanted:
        return body
    if wanted & {"no_page_information", "unknown_elements", "reordered"}:
        root = etree.fromstring(body)
        if "no_page_information" in wanted:
            for info in list(root.iter("PageInformation")):
                parent = info.getparent()
                if parent is not None:
                    parent.remove(info)
        for entity in _entities(root):
            if "reordered" in wanted:
                leaves = [child for child in entity if not len(child)]
                slots = [i for i, child in enumerate(entity) if not len(child)]
                for slot, leaf in zip(slots, reversed(leaves), strict=True):
                    entity.insert(slot, leaf)
            if "unknown_elements" in wanted:
                first, last = etree.Element("ExtensionData"), etree.Element("FutureField")
                first.text, last.text = "ignored", "1"
                entity.insert(0, first)
                entity.append(last)
        body = etree.tostring(root, xml_declaration=True, encoding="utf-8")
    if "namespaced" in wanted:
        body = body.replace(b"<DataResultService", f'<DataResultService xmlns="{NAMESPACE}"'.encode(), 1)
    if "utf16_declaration" in wanted:
        head, sep, rest = body.partition(b"?>")
        if sep and head.lstrip().startswith(b"<?xml"):
            body = b'<?xml version="1.0" encoding="utf-16"?>' + rest
    return body
