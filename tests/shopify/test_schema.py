"""The sandbox's subset SDL agrees with Shopify's full Admin schema, every document the client can send
validates against the full schema, and the client's cost arithmetic is the sandbox's.

The full schema is read from ``SHOPIFY_SCHEMA`` or ``../shared/shopify/schema/admin-2026-04.graphql``;
``CHANNEL_REQUIRE_SHOPIFY_SCHEMA=1`` (set by ``.ci/run``) turns a missing file into a failure.
graphql-core's schema validation rejects the full schema on deprecation-consistency rules, so it is
built with ``assume_valid=True`` (it is Shopify's own) and documents are validated against it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    parse,
    validate,
)

from channel_shopify import documents as docs
from channel_shopify.sandbox.cost import requested_cost
from channel_shopify.sandbox.server import sandbox_schema

SCHEMA_FILE = Path(
    os.environ.get("SHOPIFY_SCHEMA")
    or Path(__file__).resolve().parents[3] / "shared" / "shopify" / "schema" / "admin-2026-04.graphql"
)
if not SCHEMA_FILE.is_file():
    if os.environ.get("CHANNEL_REQUIRE_SHOPIFY_SCHEMA") == "1":
        raise RuntimeError(f"Shopify's Admin schema is required here but missing at {SCHEMA_FILE} (set SHOPIFY_SCHEMA)")
    pytest.skip(f"Shopify's Admin schema not found at {SCHEMA_FILE}", allow_module_level=True)


@functools.cache
def full_schema() -> GraphQLSchema:
    return build_schema(SCHEMA_FILE.read_text(encoding="utf-8"), assume_valid=True)


def test_the_subset_exists_in_the_full_schema_with_the_same_types() -> None:
    full, subset = full_schema(), sandbox_schema()
    problems: list[str] = []
    assert subset.query_type is not None and subset.query_type.name == (full.query_type.name if full.query_type else "")
    assert subset.mutation_type is not None and full.mutation_type is not None
    assert subset.mutation_type.name == full.mutation_type.name
    for name, kind in subset.type_map.items():
        if name.startswith("__"):
            continue
        other: Any = full.type_map.get(name)
        kind_: Any = kind
        if other is None:
            problems.append(f"type {name} is not in Shopify's schema")
            continue
        if type(other) is not type(kind):
            problems.append(f"{name} is a {type(kind).__name__} here, a {type(other).__name__} there")
            continue
        them: Any = full.type_map[name]
        if isinstance(kind, GraphQLEnumType):
            problems += [f"enum value {name}.{v}" for v in kind_.values if v not in them.values]
        if isinstance(kind, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
            for field_name, field in kind_.fields.items():
                theirs = them.fields.get(field_name)
                if theirs is None:
                    problems.append(f"field {name}.{field_name}")
                    continue
                if str(theirs.type) != str(field.type):
                    problems.append(f"{name}.{field_name}: {field.type} here, {theirs.type} there")
                for arg_name, arg in getattr(field, "args", {}).items():
                    their_arg = theirs.args.get(arg_name)
                    if their_arg is None or str(their_arg.type) != str(arg.type):
                        problems.append(f"argument {name}.{field_name}({arg_name}: {arg.type})")
    assert problems == []


@pytest.mark.parametrize("operation", sorted(docs.all_documents()))
def test_every_document_validates_against_the_full_schema_and_the_subset(operation: str) -> None:
    document = parse(docs.all_documents()[operation])
    assert [e.message for e in validate(full_schema(), document)] == []
    assert [e.message for e in validate(sandbox_schema(), document)] == []
    names = [d.name.value for d in document.definitions if isinstance(d, OperationDefinitionNode) and d.name]
    assert names == [operation]


def _requested(document: str, variables: dict[str, Any]) -> int:
    operation = next(d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode))
    return requested_cost(sandbox_schema(), operation, variables)


@pytest.mark.parametrize(
    "first, lines, groups, group_lines", [(1, 1, 1, 1), (4, 10, 3, 10), (7, 5, 2, 3), (250, 2, 1, 2)]
)
def test_the_listing_cost_is_what_the_sandbox_charges(first: int, lines: int, groups: int, group_lines: int) -> None:
    shape = docs.OrderShape(first, lines, groups, group_lines)
    assert shape.cost() == _requested(docs.ORDERS, {**shape.variables(), "after": None, "query": None})
    one = {"id": "gid://shopify/Order/1", "lines": lines, "groups": groups, "groupLines": group_lines}
    assert shape.order_cost() == _requested(docs.ORDER_ONE, one)


def test_the_follow_up_reads_and_the_mutations_cost_what_the_sandbox_charges() -> None:
    assert docs.lines_cost(37) == _requested(docs.ORDER_LINES, {"id": "x", "first": 37})
    assert docs.groups_cost(4, 25) == _requested(docs.ORDER_GROUPS, {"id": "x", "first": 4, "groupLines": 25})
    assert _requested(docs.SHOP, {}) == docs.SHOP_COST
    read = {"id": "x", "groups": 3, "groupLines": 10, "fulfillments": 5, "fulfillmentLines": 10}
    assert docs.shipment_read_cost(3, 10, 5, 10) == _requested(docs.ORDER_FOR_SHIPMENT, read)
    assert docs.MUTATION_COST == _requested(docs.FULFILLMENT_CREATE, {}) == _requested(docs.TRACKING_UPDATE, {})


@pytest.mark.parametrize("limit", [60, 100, 250, 1000, 2000])
def test_a_shape_fits_its_limit_and_fills_it(limit: int) -> None:
    shape = docs.OrderShape.fitting(limit)
    assert shape.cost() <= limit
    assert (
        shape.first == 250
        or docs.OrderShape(shape.first + 1, shape.lines, shape.groups, shape.group_lines).cost() > limit
    )
