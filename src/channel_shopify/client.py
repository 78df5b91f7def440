"""The Admin GraphQL client: one POST per document, errors in 200 replies classified, costs settled.

* ``THROTTLED`` (HTTP 200 or 429) is a :class:`~channel_core.errors.RateLimitedError` whose wait is
  ``(requested - currently available) / restore rate`` from the reply's own bucket state;
* ``MAX_COST_EXCEEDED`` and validation errors are :class:`~channel_core.errors.ClientError` (a bug of ours);
* ``ACCESS_DENIED`` is an :class:`~channel_core.errors.AuthenticationError` naming the missing right;
* ``data`` with ``errors`` is a partial result the caller handles (:attr:`GraphReply.errors`);
* 401 renews a minted token once and asks again; 402 and 423 are "store unavailable" (the core's).

Every reply's ``extensions.cost`` settles the reservation in the limiter and the host's budget.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from channel_core.errors import (
    AuthenticationError,
    ChannelAPIError,
    ClientError,
    RateLimitedError,
    ServerError,
)
from channel_core.http import BucketState, CostBucket, HttpClient, Measured, RetryPolicy
from channel_shopify.settings import ShopifySettings
from channel_shopify.tokens import Tokens, token_error

__all__ = ["GraphReply", "ShopifyClient"]

FIRST_GUESS = (100.0, 50.0)  # (bucket size, restore rate) before any reply tells: the smallest plan's figures


@dataclass(frozen=True, slots=True)
class GraphReply:
    data: dict[str, Any]
    errors: tuple[dict[str, Any], ...] = ()
    requested: float | None = None
    actual: float | None = None
    bucket: BucketState | None = None


@dataclass
class CostLog:
    """Points requested and spent by this connection's queries (the benchmark reports them)."""

    requested: float = 0.0
    actual: float = 0.0
    calls: int = 0
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, requested: float | None, actual: float | None) -> None:
        with self.lock:
            self.calls += 1
            self.requested += requested or 0.0
            self.actual += actual or 0.0


def _cost(body: Any) -> tuple[float | None, float | None, BucketState | None]:
    cost = (body.get("extensions") or {}).get("cost") if isinstance(body, dict) else None
    if not isinstance(cost, dict):
        return None, None, None
    status = cost.get("throttleStatus") or {}
    bucket = None
    try:
        bucket = BucketState(
            float(status["maximumAvailable"]), float(status["currentlyAvailable"]), float(status["restoreRate"])
        )
    except (KeyError, TypeError, ValueError):
        bucket = None
    requested, actual = cost.get("requestedQueryCost"), cost.get("actualQueryCost")
    return (
        float(requested) if isinstance(requested, (int, float)) else None,
        float(actual) if isinstance(actual, (int, float)) else None,
        bucket,
    )


class ShopifyClient:
    """Executes documents against one shop's Admin API."""

    def __init__(
        self, settings: ShopifySettings, *, tokens_keeper: Any = None, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.bucket = CostBucket(*FIRST_GUESS)
        self.http = HttpClient(
            channel="shopify",
            base_url=settings.base_url,
            timeout=httpx.Timeout(settings.timeout, connect=10.0),
            retry_policy=RetryPolicy(
                max_attempts=settings.retry_attempts,
                backoff_initial=settings.retry_backoff,
                jitter=settings.retry_backoff,
            ),
            rate_limiter=self.bucket,
            transport=transport,
        )
        self.tokens = Tokens(settings, self.http, tokens_keeper)
        self.path = f"admin/api/{settings.api_version}/graphql.json"
        self.costs = CostLog()

    def close(self) -> None:
        self.http.close()

    def execute(
        self, operation: str, document: str, variables: dict[str, Any], *, cost: float, write: bool = False
    ) -> GraphReply:
        """Run ``document``; ``cost`` is what it reserves (its requested cost, or a safe bound)."""
        for attempt in (1, 2):
            try:
                header = self.tokens.header()
            except ChannelAPIError as exc:
                raise token_error(exc) from None
            try:
                return self._post(operation, document, variables, cost=cost, write=write, header=header)
            except AuthenticationError as exc:
                if exc.status_code == 401 and attempt == 1 and self.tokens.rejected(header):
                    continue  # a minted token that expired early or was revoked: mint once more
                raise
        raise AssertionError("unreachable")

    def _post(
        self,
        operation: str,
        document: str,
        variables: dict[str, Any],
        *,
        cost: float,
        write: bool,
        header: dict[str, str],
    ) -> GraphReply:
        box: dict[str, Any] = {}

        def body_of(response: httpx.Response) -> Any:
            if box.get("response") is not response:  # a new attempt: forget the last one's reply
                box.clear()
                box["response"] = response
                try:
                    box["body"] = json.loads(response.content)
                except ValueError:
                    box["body"] = None
            return box["body"]

        def measure(response: httpx.Response) -> Measured | None:
            requested, actual, bucket = _cost(body_of(response))
            if requested is None and bucket is None:  # a reply without a cost (a 5xx page): charged nothing we know
                return Measured(actual=0.0)
            box["cost"] = (requested, actual, bucket)
            throttled = actual is None and bucket is not None
            return Measured(actual=0.0 if throttled else actual, bucket=bucket)

        def classify(response: httpx.Response) -> None:
            body = body_of(response)
            errors = body.get("errors") if isinstance(body, dict) else None
            if not isinstance(errors, list):
                return
            codes = {str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}
            if "THROTTLED" in codes:
                requested, _, bucket = box.get("cost", (None, None, None))
                wait = None
                if bucket is not None and bucket.restore_rate > 0:
                    wait = max(0.0, ((requested or cost) - bucket.available) / bucket.restore_rate)
                self.costs.throttled += 1
                raise RateLimitedError(
                    "Shopify throttled the query (its cost bucket is short)",
                    retry_after=wait,
                    request_sent=False,
                    channel="shopify",
                    operation=operation,
                    status_code=response.status_code,
                )

        def parse(response: httpx.Response) -> GraphReply:
            body = body_of(response)
            if not isinstance(body, dict):
                raise ServerError(
                    "the reply is not a JSON object",
                    channel="shopify",
                    operation=operation,
                    status_code=response.status_code,
                )
            errors = body.get("errors") or []
            if isinstance(errors, str):
                errors = [{"message": errors}]
            data = body.get("data")
            requested, actual, bucket = box.get("cost", (None, None, None))
            self.costs.add(requested, actual)
            codes = {str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}
            messages = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
            if "MAX_COST_EXCEEDED" in codes:
                raise ClientError(f"query too costly: {messages}", channel="shopify", operation=operation)
            if "ACCESS_DENIED" in codes:
                raise AuthenticationError(f"access denied: {messages}", channel="shopify", operation=operation)
            if "INTERNAL_SERVER_ERROR" in codes and not isinstance(data, dict):
                raise ServerError(f"Shopify failed the query: {messages}", channel="shopify", operation=operation)
            if not isinstance(data, dict):
                if not errors:
                    raise ClientError(
                        "Shopify answered with neither data nor errors", channel="shopify", operation=operation
                    )
                data = {}  # every field failed: the caller reads the errors (a read fails closed on them)
            return GraphReply(
                data=data,
                errors=tuple(e for e in errors if isinstance(e, dict)),
                requested=requested,
                actual=actual,
                bucket=bucket,
            )

        return self.http.post_json(
            self.path,
            {"query": document, "variables": variables, "operationName": operation},
            operation=operation,
            idempotent=not write,
            parse=parse,
            headers=header,
            cost=cost,
            measure=measure,
            classify=classify,
        )

    def __repr__(self) -> str:
        return f"ShopifyClient(shop={self.settings.shop!r}, api_version={self.settings.api_version!r})"
