"""Every GraphQL document the channel sends, and what each one costs.

The listing returns whole orders: no per-order detail call. Its cost is Shopify's formula applied to
its shape (an object 1, a connection 2 + ``first`` times a node), so :class:`OrderShape` can choose
``first`` for the page and for each nested connection to fit the cost limit and the bucket. Costs
are checked against the sandbox's executor in ``tests/shopify/test_documents.py``; every document
is validated against Shopify's full schema there too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FULFILLMENT_CREATE",
    "FULFILLMENT_ORDER_OWNER",
    "ORDERS",
    "ORDER_FOR_SHIPMENT",
    "ORDER_GROUPS",
    "ORDER_LINES",
    "ORDER_ONE",
    "SHOP",
    "TRACKING_UPDATE",
    "WEBHOOKS",
    "WEBHOOK_CREATE",
    "OrderShape",
    "all_documents",
]

MONEY = "shopMoney { amount currencyCode }"
ADDRESS = "name firstName lastName company address1 address2 city province provinceCode zip countryCodeV2 phone"

LINE = f"""id sku name title variantTitle quantity currentQuantity requiresShipping isGiftCard
  originalUnitPriceSet {{ {MONEY} }}
  variant {{ id selectedOptions {{ name value }} inventoryItem {{ measurement {{ weight {{ unit value }} }} }} }}
  product {{ id }}
  image {{ url }}"""
LINE_COST = (
    1 + 2 + 5 + 1 + 1
)  # the line, its price bag and money, variant+options+inventory+measurement+weight, product, image

GROUP = """id status requestStatus
  assignedLocation { name address1 address2 city province zip countryCode phone location { id } }
  deliveryMethod { methodType serviceCode presentedName sourceReference }
  fulfillmentHolds { reasonNotes }
  lineItems(first: $groupLines) {
    pageInfo { hasNextPage }
    nodes { id totalQuantity remainingQuantity lineItem { id } }
  }"""
GROUP_COST = 1 + 2 + 1 + 1  # the group, its location and location id, delivery method, holds
GROUP_LINE_COST = 2  # the group line and its order line

ORDER = f"""id name createdAt updatedAt processedAt cancelledAt closed displayFinancialStatus displayFulfillmentStatus
  email phone note tags currencyCode discountCodes paymentGatewayNames
  customer {{ id displayName email phone }}
  shippingAddress {{ {ADDRESS} }}
  billingAddress {{ {ADDRESS} }}
  shippingLine {{ title code carrierIdentifier source originalPriceSet {{ {MONEY} }} }}
  totalDiscountsSet {{ {MONEY} }}
  totalShippingPriceSet {{ {MONEY} }}
  totalTaxSet {{ {MONEY} }}
  totalPriceSet {{ {MONEY} }}
  lineItems(first: $lines) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE} }} }}
  fulfillmentOrders(first: $groups) {{ pageInfo {{ hasNextPage }} nodes {{ {GROUP} }} }}"""
ORDER_COST = 1 + 1 + 1 + 1 + 3 + 2 * 4  # the order, customer, two addresses, shipping line (+ price), four money bags

ORDERS = f"""query ChannelOrders(
  $first: Int!, $after: String, $query: String, $lines: Int!, $groups: Int!, $groupLines: Int!
) {{
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{
    pageInfo {{ hasNextPage endCursor }}
    nodes {{ {ORDER} }}
  }}
}}"""

ORDER_ONE = f"""query ChannelOrder($id: ID!, $lines: Int!, $groups: Int!, $groupLines: Int!) {{
  order(id: $id) {{ {ORDER} }}
}}"""

ORDER_LINES = f"""query ChannelOrderLines($id: ID!, $first: Int!, $after: String) {{
  order(id: $id) {{
    id
    lineItems(first: $first, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {LINE} }} }}
  }}
}}"""

ORDER_GROUPS = f"""query ChannelOrderGroups($id: ID!, $first: Int!, $after: String, $groupLines: Int!) {{
  order(id: $id) {{
    id
    fulfillmentOrders(first: $first, after: $after) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {GROUP} }} }}
  }}
}}"""

FULFILLMENT_ORDER_OWNER = """query ChannelFulfillmentOrderOwner($id: ID!) {
  fulfillmentOrder(id: $id) { id orderId }
}"""
FULFILLMENT_ORDER_OWNER_COST = 1

WEBHOOKS = """query ChannelWebhooks($first: Int!, $after: String) {
  webhookSubscriptions(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}"""

WEBHOOK_CREATE = """mutation ChannelWebhookCreate($topic: WebhookSubscriptionTopic!, $uri: String!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: {uri: $uri, format: JSON}) {
    webhookSubscription { id topic uri }
    userErrors { field message }
  }
}"""
WEBHOOK_CREATE_COST = 10 + 1 + 1 + 1


def webhooks_cost(first: int) -> int:
    return 2 + first


SHOP = """query ChannelShop {
  shop { id name myshopifyDomain currencyCode weightUnit }
  currentAppInstallation { accessScopes { handle } }
}"""
SHOP_COST = 1 + 1 + 1  # shop, installation, its scopes

ORDER_FOR_SHIPMENT = """query ChannelOrderForShipment(
  $id: ID!, $groups: Int!, $groupLines: Int!, $fulfillments: Int!, $fulfillmentLines: Int!
) {
  order(id: $id) {
    id name cancelledAt displayFulfillmentStatus
    fulfillmentOrders(first: $groups) {
      nodes {
        id status
        assignedLocation { name location { id } }
        lineItems(first: $groupLines) { nodes { id totalQuantity remainingQuantity lineItem { id sku } } }
      }
    }
    fulfillments(first: $fulfillments) {
      id status
      trackingInfo { company number url }
      fulfillmentLineItems(first: $fulfillmentLines) { nodes { quantity lineItem { id sku } } }
    }
  }
}"""

FULFILLMENT_RESULT = "id status trackingInfo { company number url }"

FULFILLMENT_CREATE = f"""mutation ChannelFulfillmentCreate($fulfillment: FulfillmentInput!) {{
  fulfillmentCreate(fulfillment: $fulfillment) {{
    fulfillment {{ {FULFILLMENT_RESULT} }}
    userErrors {{ field message }}
  }}
}}"""

TRACKING_UPDATE = f"""mutation ChannelTrackingUpdate(
  $id: ID!, $tracking: FulfillmentTrackingInput!, $notify: Boolean
) {{
  fulfillmentTrackingInfoUpdate(fulfillmentId: $id, trackingInfoInput: $tracking, notifyCustomer: $notify) {{
    fulfillment {{ {FULFILLMENT_RESULT} }}
    userErrors {{ field message }}
  }}
}}"""
MUTATION_COST = 10 + 1 + 1 + 1 + 1  # the mutation, its payload, the fulfillment, its tracking, the user errors


def shipment_read_cost(groups: int, group_lines: int, fulfillments: int, fulfillment_lines: int) -> int:
    group = 1 + 2 + (2 + group_lines * 2)
    fulfillment = 1 + 1 + (2 + fulfillment_lines * 2)
    return 1 + (2 + groups * group) + fulfillments * fulfillment


@dataclass(frozen=True, slots=True)
class OrderShape:
    """How many orders a listing page asks for, and how deep each nested connection goes."""

    first: int
    lines: int
    groups: int
    group_lines: int

    def order_cost(self) -> int:
        return (
            ORDER_COST
            + 2
            + self.lines * LINE_COST
            + 2
            + self.groups * (GROUP_COST + 2 + self.group_lines * GROUP_LINE_COST)
        )

    def cost(self) -> int:
        """The listing's requested cost, as Shopify computes it before running it."""
        return 2 + self.first * self.order_cost()

    @classmethod
    def fitting(cls, limit: float, *, wanted: int = 250, seen: tuple[int, int, int] | None = None) -> OrderShape:
        """The richest shape under ``limit`` points: nested connections first (so most orders come whole),
        then as many orders as fit.

        :param seen: the most lines, fulfillment orders and lines per fulfillment order the recent orders had;
            the nested ``first`` arguments shrink to them (an order with more is completed by follow-up queries),
            so a page holds more orders.
        """
        nested = [(10, 3, 10), (5, 2, 5), (3, 2, 3), (2, 1, 2), (1, 1, 1)]
        if seen is not None:
            lines, groups, group_lines = (max(1, n) for n in seen)
            nested = [(min(lines, 10), min(groups, 3), min(group_lines, 10)), *nested]
        for lines, groups, group_lines in nested:
            shape = cls(1, lines, groups, group_lines)
            if shape.cost() <= limit:
                first = max(1, min(wanted, int((limit - 2) // shape.order_cost())))
                return cls(first, lines, groups, group_lines)
        return cls(1, 1, 1, 1)

    def variables(self) -> dict[str, int]:
        return {"first": self.first, "lines": self.lines, "groups": self.groups, "groupLines": self.group_lines}


def lines_cost(first: int) -> int:
    return 1 + 2 + first * LINE_COST


def groups_cost(first: int, group_lines: int) -> int:
    return 1 + 2 + first * (GROUP_COST + 2 + group_lines * GROUP_LINE_COST)


def all_documents() -> dict[str, str]:
    """Every document the client can send, by operation name."""
    return {
        "ChannelOrders": ORDERS,
        "ChannelOrder": ORDER_ONE,
        "ChannelOrderLines": ORDER_LINES,
        "ChannelOrderGroups": ORDER_GROUPS,
        "ChannelShop": SHOP,
        "ChannelFulfillmentOrderOwner": FULFILLMENT_ORDER_OWNER,
        "ChannelWebhooks": WEBHOOKS,
        "ChannelWebhookCreate": WEBHOOK_CREATE,
        "ChannelOrderForShipment": ORDER_FOR_SHIPMENT,
        "ChannelFulfillmentCreate": FULFILLMENT_CREATE,
        "ChannelTrackingUpdate": TRACKING_UPDATE,
    }
