"""The Shopify channel: orders through the Admin GraphQL API, shipments as fulfillments of fulfillment orders."""

__version__ = "0.1.0"
