"""Query cost as Shopify documents it: what a document requests before it runs, what it cost after.

Scalars and enums cost 0, an object 1, a connection 2 plus ``first`` (or ``last``) times the cost of
one node; a list field with a ``first`` argument counts ``first`` objects; a mutation costs 10 on top
of what it selects. The actual cost counts the nodes the reply really holds instead of ``first``
(shopify.dev "GraphQL Admin API rate limits", ``shopify-api.md`` §3).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    value_from_ast,
)

__all__ = ["MUTATION_COST", "actual_cost", "requested_cost"]

MUTATION_COST = 10


def _argument(node: FieldNode, name: str, variables: dict[str, Any], field_def: Any) -> Any:
    for argument in node.arguments or ():
        if argument.name.value == name:
            return value_from_ast(argument.value, field_def.args[name].type, variables)
    return None


def _is_list(tp: Any) -> bool:
    while isinstance(tp, GraphQLNonNull):
        tp = tp.of_type
    return isinstance(tp, GraphQLList)


def _selection_cost(
    selection: SelectionSetNode | None, parent: GraphQLObjectType, variables: dict[str, Any], data: Any
) -> int:
    if selection is None:
        return 0
    total = 0
    for node in selection.selections:
        if not isinstance(node, FieldNode) or node.name.value.startswith("__"):
            continue
        field_def = parent.fields[node.name.value]
        named = get_named_type(field_def.type)
        if not isinstance(named, GraphQLObjectType):
            continue
        key = node.alias.value if node.alias else node.name.value
        value = data.get(key) if isinstance(data, dict) else None
        size = _argument(node, "first", variables, field_def) if "first" in field_def.args else None
        if named.name.endswith("Connection"):
            nodes_field = next(
                (
                    n
                    for n in (node.selection_set.selections if node.selection_set else ())
                    if isinstance(n, FieldNode) and n.name.value == "nodes"
                ),
                None,
            )
            node_type = get_named_type(named.fields["nodes"].type)
            assert isinstance(node_type, GraphQLObjectType)
            if data is None:  # requested: as many as asked for
                per_node = 1 + _selection_cost(
                    nodes_field.selection_set if nodes_field else None, node_type, variables, None
                )
                total += 2 + int(size or 0) * per_node
            else:
                nodes = (value or {}).get("nodes") or [] if isinstance(value, dict) else []
                total += 2 + sum(
                    1 + _selection_cost(nodes_field.selection_set if nodes_field else None, node_type, variables, n)
                    for n in nodes
                )
        elif _is_list(field_def.type):
            if data is None:
                count = int(size) if size is not None else 1
                total += count * (1 + _selection_cost(node.selection_set, named, variables, None))
            else:
                total += sum(1 + _selection_cost(node.selection_set, named, variables, v) for v in (value or []))
        elif data is None or value is not None:
            total += 1 + _selection_cost(node.selection_set, named, variables, value if data is not None else None)
    return total


def _cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: dict[str, Any], data: dict[str, Any] | None
) -> int:
    mutation = operation.operation == OperationType.MUTATION
    root = schema.mutation_type if mutation else schema.query_type
    assert root is not None
    fields = sum(1 for n in operation.selection_set.selections if isinstance(n, FieldNode))
    return (MUTATION_COST * fields if mutation else 0) + _selection_cost(operation.selection_set, root, variables, data)


def requested_cost(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: dict[str, Any]) -> int:
    """What the document reserves before it runs."""
    return _cost(schema, operation, variables, None)


def actual_cost(
    schema: GraphQLSchema, operation: OperationDefinitionNode, variables: dict[str, Any], data: dict[str, Any]
) -> int:
    """What the document cost, counting what the reply holds."""
    return _cost(schema, operation, variables, data)
