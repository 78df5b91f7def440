"""A local stand-in for Shopify shops: the Admin GraphQL API executed with graphql-core, cost-based
rate limits, fulfillment orders and rotating credentials. See :mod:`channel_shopify.sandbox.server`."""

from channel_shopify.sandbox.handle import ShopifySandbox, make_sandbox
from channel_shopify.sandbox.server import ShopifySandboxConfig, ShopifySandboxServer

__all__ = ["ShopifySandbox", "ShopifySandboxConfig", "ShopifySandboxServer", "make_sandbox"]
