"""The sandbox answers raw HTTP form posts, as ``curl`` would send them."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

from channel_oxatis.sandbox import SandboxServer


def post(sandbox: SandboxServer, service: str, form: dict[str, str]) -> etree._Element:
    response = httpx.post(f"{sandbox.url}/webservices/httpservices/{service}.aspx", data=form)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    assert root.tag == "DataResultService"
    return root


@pytest.mark.sandbox_config(count=10)
def test_form_post_gets_a_data_result_service_reply(sandbox: SandboxServer) -> None:
    root = post(
        sandbox,
        "OrderServices",
        {
            "AppId": "x",
            "Token": "sandbox-token",
            "Method": "OrderGet",
            "Data": "<OrderId><OxID>100002</OxID></OrderId>",
        },
    )
    assert root.findtext("StatusCode") == "200"
    assert root.findtext("Data/Order/OxID") == "100002"
    assert root.find("Data/Order/OrderItems") is None  # OrderGet has no lines


@pytest.mark.sandbox_config(count=10)
def test_field_names_are_case_insensitive_like_the_csharp_sample(sandbox: SandboxServer) -> None:
    root = post(
        sandbox,
        "OrderServices",
        {
            "TOKEN": "sandbox-token",
            "METHOD": "OrderCount",
            "DATA": "<OrderList><OrderDateStart>2010-01-15T00:00:00</OrderDateStart></OrderList>",
        },
    )
    assert root.findtext("Data/Count") == "10"


@pytest.mark.sandbox_config(count=10)
def test_bad_token_unknown_page_and_bad_xml(sandbox: SandboxServer) -> None:
    assert (
        post(sandbox, "OrderServices", {"Token": "nope", "Method": "OrderGet", "Data": ""}).findtext("StatusCode")
        == "503"
    )
    assert (
        post(sandbox, "NoSuchServices", {"Token": "sandbox-token", "Method": "OrderGet"}).findtext("StatusCode")
        == "503"
    )
    bad = post(sandbox, "OrderServices", {"Token": "sandbox-token", "Method": "OrderGet", "Data": "<OrderId><OxID>1"})
    assert bad.findtext("StatusCode") == "500" and "Invalid XML" in (bad.findtext("ErrorDetails") or "")
    missing = post(
        sandbox,
        "OrderServices",
        {"Token": "sandbox-token", "Method": "OrderGet", "Data": "<OrderId><OxID>999</OxID></OrderId>"},
    )
    assert (missing.findtext("StatusCode"), missing.findtext("StatusSubCode")) == ("500", "1001")


@pytest.mark.sandbox_config(count=120)
def test_paging_and_sort_order(sandbox: SandboxServer) -> None:
    def page(number: int, desc: str) -> list[str]:
        data = (
            f"<OrderSummaryList><SetOrderDesc>{desc}</SetOrderDesc><PageInformation><PageNumber>{number}"
            "</PageNumber><PageSize>50</PageSize></PageInformation></OrderSummaryList>"
        )
        root = post(sandbox, "OrderServices", {"Token": "sandbox-token", "Method": "OrderGetSummaryList", "Data": data})
        assert root.findtext("Data/OrderSummaryList/PageInformation/TotalPages") == "3"
        return [e.text or "" for e in root.iterfind("Data/OrderSummaryList/OrderSummaries/OrderSummary/OxID")]

    ascending = page(1, "false") + page(2, "false") + page(3, "false")
    assert ascending == sorted(ascending) and len(ascending) == 120
    assert page(1, "true")[0] == "100120"  # SetOrderDesc defaults to newest first
