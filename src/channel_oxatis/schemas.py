"""marshmallow schemas for the Oxatis wire entities: the only place wire types are checked.

Field names are the Oxatis element names (oxatis-api.md §3), spelled as in the
XSD and WSDL. Every field is optional because real replies omit null fields;
unknown elements are excluded, never fatal. A wrongly typed value becomes a
:class:`~channel_core.errors.PayloadError` naming the order and the field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from lxml import etree
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from channel_core.errors import PayloadError
from channel_oxatis.wire import element_to_dict

__all__ = [
    "BundledItemSchema",
    "CharacteristicIdSchema",
    "OptionTypeDetailSchema",
    "OptionValueSchema",
    "OrderItemSchema",
    "OrderSchema",
    "OrderSummarySchema",
    "PageInformationSchema",
    "ProgressStateLogSchema",
    "ProgressStateSchema",
    "load",
    "load_element",
]


def _str() -> fields.String:
    return fields.String(load_default=None)


def _int() -> fields.Integer:
    return fields.Integer(load_default=None, strict=False)


MAX_AMOUNT = Decimal(10) ** 12  # money, weights and rates beyond this are corrupt data, not orders


def _num() -> fields.Decimal:
    return fields.Decimal(
        load_default=None, allow_nan=False, validate=validate.Range(-MAX_AMOUNT, MAX_AMOUNT, error="out of range")
    )


def _bool() -> fields.Boolean:
    return fields.Boolean(load_default=None, truthy={"true", "True", "1"}, falsy={"false", "False", "0"})


def _dt() -> fields.DateTime:
    return fields.DateTime(load_default=None, format="iso")


class _Wire(Schema):
    class Meta:
        unknown = EXCLUDE


class PageInformationSchema(_Wire):
    PageNumber = _int()
    PageSize = _int()
    TotalItems = _int()
    TotalPages = _int()


class OrderSummarySchema(_Wire):
    """``OrderSummaryEntity`` (§3.2): listed by ``OrderGetSummaryList``, inherited by ``Order``."""

    OxID = fields.Integer(required=True, strict=False)
    Date = _dt()
    BillingFirstName = _str()
    BillingLastName = _str()
    SubTotalVAT = _num()
    ShippingPriceTaxExcl = _num()
    NetAmountDue = _num()
    ShippingVATAmount = _num()
    PaymentStatusCode = _int()
    ProgressStateID = _int()
    FollowUp = _bool()
    SubTotalNetVATExcluded = _num()
    SourceTypeID = _int()
    CampaignTrackingID = _int()
    Shipped = _bool()
    PaymentFeesTaxExc = _num()
    PaymentFeesVATAmount = _num()


class _ItemFieldsSchema(_Wire):
    """Fields common to order lines and bundled items (``OrderDetailBundledItemBaseEntity``)."""

    OxID = _int()
    ItemOxID = _int()
    ItemSKU = _str()
    ItemName = _str()
    GrossPrice = _num()
    ItemMainImageUrl = _str()
    ItemThumbnailImageUrl = _str()
    Option1Name = _str()
    Option1Value = _str()
    Option2Name = _str()
    Option2Value = _str()
    Option3Name = _str()
    Option3Value = _str()
    Offered = _bool()
    Quantity = _int()


class BundledItemSchema(_ItemFieldsSchema):
    """``OrderDetailBundledItemEntity`` (§3.5.1), the element ``BundledItems/BundledItem``."""


class OrderItemSchema(_ItemFieldsSchema):
    """``OrderDetailEntity`` (§3.5), the element ``OrderItems/Item``."""

    ItemSKUOriginal = _str()
    GrossAmount = _num()
    TaxRate = _num()
    DiscountRate = _num()
    NetPrice = _num()
    NetAmount = _num()
    VATAmount = _num()
    EcoTaxValueTaxIncl = _num()
    DiscountCoupon = _str()
    Attribute1Name = _str()
    Attribute1Value = _str()
    Attribute2Name = _str()
    Attribute2Value = _str()
    AttributeTextName = _str()
    AttributeTextValue = _str()
    PackagingName = _str()
    LinkedTo = _int()
    EANCode = _str()
    Weight = _num()
    PackagingQty = _int()
    BundledItems = fields.List(fields.Nested(BundledItemSchema), load_default=list)


class OrderSchema(OrderSummarySchema):
    """``OrderEntity`` (§3.3-3.4): every field the mapping reads."""

    LoyaltyPointsUsed = _int()
    Gift = _bool()
    GiftMessage = _str()
    DispatchDate = _dt()
    UserEmail = _str()
    UserOxID = _int()
    CustomerCode = _str()
    BillingTitle = _str()
    BillingCompany = _str()
    BillingAddress = _str()
    BillingAddressL1 = _str()
    BillingAddressL2 = _str()
    BillingAddressL3 = _str()
    BillingAddressL4 = _str()
    BillingAddressFloor = _str()
    BillingAddressBuilding = _str()
    BillingAddressStreet = _str()
    BillingAddressOtherInfo = _str()
    BillingZipCode = _str()
    BillingCity = _str()
    BillingState = _str()
    BillingStateName = _str()
    BillingCountryISOCode = _str()
    BillingCountryName = _str()
    BillingPhone = _str()
    BillingCellPhone = _str()
    ShippingCompany = _str()
    ShippingTitle = _str()
    ShippingFirstName = _str()
    ShippingLastName = _str()
    ShippingAddress = _str()
    ShippingAddressL1 = _str()
    ShippingAddressL2 = _str()
    ShippingAddressL3 = _str()
    ShippingAddressL4 = _str()
    ShippingAddressFloor = _str()
    ShippingAddressBuilding = _str()
    ShippingAddressStreet = _str()
    ShippingAddressOtherInfo = _str()
    ShippingZipCode = _str()
    ShippingCity = _str()
    ShippingState = _str()
    ShippingStateName = _str()
    ShippingCountryISOCode = _str()
    ShippingCountryName = _str()
    ShippingPhone = _str()
    ShippingInfo = _str()
    VATIncluded = _bool()
    SubTotalNet = _num()
    SubTotalNetDiscounted = _num()
    GlobalDiscountRate = _num()
    GlobalDiscountAmount = _num()
    ShippingID = _int()
    ShippingMethodName = _str()
    ShippingProcessorCode = _int()
    ShippingParam1 = _str()
    ShippingParam2 = _str()
    ShippingParam3 = _str()
    ShippingTaxRate = _num()
    ShippingPriceTaxIncl = _num()
    CartCoupon = _str()
    Language = _str()
    PaymentMethodID = _int()
    PaymentMethodName = _str()
    PMProcessorCode = _int()
    PaymentStatusLastModifiedDate = _dt()
    SpecialInstructions = _str()
    CurrencyCode = _str()
    InvoiceDate = _dt()
    InvoiceID = _str()
    InternalNote = _str()
    TrackingNumber = _str()
    SourceOrderID = _str()
    DateOfDelivery = _dt()
    DateOfPicking = _dt()
    TransportName = _str()
    TrackingUrl = _str()
    Comment = _str()
    CashOnDelivery = _bool()
    TotalWeight = _num()
    OrderItems = fields.List(fields.Nested(OrderItemSchema), load_default=list)


class ProgressStateSchema(_Wire):
    """``ProgressStateEntity`` (§2.4): ``Code`` is the mnemonic, e.g. ``SST-SHIPPED``."""

    OxID = fields.Integer(required=True, strict=False)
    Code = _str()
    Color = _str()
    NameFR = _str()
    NameEN = _str()
    Publish = _bool()
    SendMail = _bool()
    UpdateOrders = _bool()


class ProgressStateLogSchema(_Wire):
    """``OrderProgressStateHistoryEntity`` (§2.5), one entry of ``GetOrderProgressStateLogs``."""

    OxID = _int()
    ID = _int()
    Code = _str()
    ProgressStateName = _str()
    OrderID = _int()
    Date = _dt()
    Comment = _str()
    Published = _bool()


class CharacteristicIdSchema(_Wire):
    """``CharacteristicIdEntity``: one characteristic of a product, as ids (oxatis-api.md §7.1)."""

    OptionTypeID = _int()
    OptionValueID = _int()


class OptionValueSchema(_Wire):
    """``OptionValueDetailEntity``: one value of an option type, with its names."""

    OxID = _int()
    Code = _str()
    NameFR = _str()
    NameEN = _str()
    NameDE = _str()
    NameES = _str()
    NameIT = _str()
    NameNL = _str()
    NamePT = _str()
    NameCA = _str()
    SystemName = _str()


class OptionTypeDetailSchema(OptionValueSchema):
    """``OptionTypeDetailEntity`` (``OptionTypesGetDetail``): an option type, its names and its values."""

    OptionValueArray = fields.List(fields.Nested(OptionValueSchema), load_default=list)


# ---------------------------------------------------------------------------- loading
#
# marshmallow declares the wire types and reports errors. Loading thousands of
# orders through ``Schema.load`` costs ten times the XML parse, so each schema is
# also compiled once into plain converter functions derived from its declared
# fields. The compiled path handles well-formed data; anything it cannot convert
# goes through ``Schema.load``, whose result (or error messages) is what counts.
# tests/oxatis/test_schemas.py checks both paths agree.

Converter = Callable[[Any], Any]
_SCHEMAS: dict[type[Schema], Schema] = {}
_COMPILED: dict[type[Schema], Callable[[dict[str, Any]], dict[str, Any]]] = {}


class _Fallback(Exception):
    """The compiled path cannot convert this value; let marshmallow decide."""


def _to_int(value: Any) -> int:
    return int(value)


def _to_decimal(value: Any) -> Decimal:
    number = Decimal(value)
    if not number.is_finite():
        raise _Fallback
    return number


def _to_str(value: Any) -> str:
    if type(value) is not str:
        raise _Fallback
    return value


def _bool_converter(field: fields.Boolean) -> Converter:
    truthy, falsy = field.truthy, field.falsy

    def convert(value: Any) -> bool:
        if value in truthy:
            return True
        if value in falsy:
            return False
        raise _Fallback

    return convert


def _to_datetime(value: Any) -> datetime:
    if type(value) is not str or len(value) < 19 or value[10] != "T":
        raise _Fallback
    return datetime.fromisoformat(value)


def _converter(field: fields.Field[Any]) -> Converter:
    convert = _base_converter(field)
    validators = tuple(field.validators)
    if not validators:
        return convert

    def convert_and_validate(value: Any) -> Any:
        result = convert(value)
        for validator in validators:
            validator(result)  # raises ValidationError: marshmallow then reports it
        return result

    return convert_and_validate


def _base_converter(field: fields.Field[Any]) -> Converter:
    if isinstance(field, fields.Nested) and isinstance(field.nested, type):
        return _compiled(field.nested)
    if isinstance(field, fields.List):
        inner = _converter(field.inner)

        def convert_list(value: Any) -> list[Any]:
            if type(value) is not list:
                raise _Fallback
            return [inner(v) for v in value]

        return convert_list
    if isinstance(field, fields.Boolean):
        return _bool_converter(field)
    if isinstance(field, fields.Integer):
        return _to_int
    if isinstance(field, fields.Decimal):
        return _to_decimal
    if isinstance(field, fields.DateTime):
        return _to_datetime
    if isinstance(field, fields.String):
        return _to_str
    raise TypeError(f"no compiled converter for {type(field).__name__}")


def _compiled(schema_class: type[Schema]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    compiled = _COMPILED.get(schema_class)
    if compiled is not None:
        return compiled
    declared = schema_class._declared_fields
    converters = {name: _converter(field) for name, field in declared.items()}
    required = frozenset(name for name, field in declared.items() if field.required)
    optional = {name: field.load_default for name, field in declared.items() if not field.required}
    constant_defaults = {name: d for name, d in optional.items() if not callable(d)}
    factory_defaults = {name: d for name, d in optional.items() if callable(d)}

    def convert(data: dict[str, Any]) -> dict[str, Any]:
        if type(data) is not dict or not required <= data.keys():
            raise _Fallback
        out = constant_defaults.copy()  # one C-level copy instead of a loop over every absent field
        for name, factory in factory_defaults.items():
            if name not in data:
                out[name] = factory()
        for name, value in data.items():
            converter = converters.get(name)
            if converter is not None:
                out[name] = converter(value)
        return out

    _COMPILED[schema_class] = convert
    return convert


def load(schema_class: type[Schema], data: dict[str, Any], *, what: str, order_id: str | None = None) -> dict[str, Any]:
    """Validate ``data`` with ``schema_class``; wrap failures as a :class:`PayloadError`."""
    try:
        return _compiled(schema_class)(data)
    except (_Fallback, ValidationError, ValueError, TypeError, ArithmeticError):
        pass
    schema = _SCHEMAS.get(schema_class)
    if schema is None:
        schema = _SCHEMAS[schema_class] = schema_class()
    try:
        result: dict[str, Any] = schema.load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise PayloadError(f"invalid {what}", messages=messages, order_id=order_id) from None
    return result


# ---------------------------------------------------------------------------- loading straight from XML
#
# ``load(schema, element_to_dict(element, lists))`` builds a dict of texts and then converts it. The element
# loader below does both in one walk over the element, with the same converters: the same result for every
# element, and for anything it cannot convert the two-step path (and marshmallow's messages) decides.
# tests/oxatis/test_schemas.py checks the two agree on generated elements.

ElementLoader = Callable[[etree._Element], dict[str, Any]]
_ELEMENT_LOADERS: dict[tuple[type[Schema], tuple[tuple[str, str], ...]], ElementLoader] = {}


def _child_loader(
    field: fields.Field[Any], item_tag: str | None, lists: dict[str, str]
) -> tuple[Converter | None, bool]:
    """How a child element becomes its field's value: (converter, True) for a container, which gets the element;
    (converter, False) for a value, which gets the element's text."""
    if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
        nested_class = field.inner.nested
        if not isinstance(nested_class, type) or item_tag is None:
            raise TypeError(f"a list of nested {nested_class!r} needs its item tag in the lists map")
        nested = _element_loader(nested_class, lists)

        def load_list(child: etree._Element) -> list[dict[str, Any]]:
            return [
                nested(item)
                for item in child
                if type(item.tag) is str and (item.tag == item_tag or item.tag.rpartition("}")[2] == item_tag)
            ]

        return load_list, True
    if item_tag is not None or isinstance(field, fields.List | fields.Nested):
        raise TypeError(f"no element loader for {type(field).__name__} fields listed as {item_tag!r}")
    return _text_converter(field), False


def _text_converter(field: fields.Field[Any]) -> Converter | None:
    """The converter for an element's text (always a ``str``); ``None``: the text is the value."""
    validators = tuple(field.validators)
    if type(field) is fields.String and not validators:
        return None
    if type(field) is fields.Integer and not validators:
        return int
    if type(field) is fields.Decimal and len(validators) == 1 and type(validators[0]) is validate.Range:
        bounds = validators[0]
        low, high = Decimal(bounds.min), Decimal(bounds.max)
        if bounds.min_inclusive and bounds.max_inclusive:

            def decimal_in_range(text: str) -> Decimal:
                number = Decimal(text)
                if not low <= number <= high:  # NaN raises InvalidOperation, infinities fail: marshmallow says
                    raise _Fallback
                return number

            return decimal_in_range
    return _converter(field)


def _element_loader(schema_class: type[Schema], lists: dict[str, str]) -> ElementLoader:
    key = (schema_class, tuple(sorted(lists.items())))
    loader = _ELEMENT_LOADERS.get(key)
    if loader is not None:
        return loader
    declared = schema_class._declared_fields
    plan = {name: _child_loader(field, lists.get(name), lists) for name, field in declared.items()}
    required = frozenset(name for name, field in declared.items() if field.required)
    optional = {name: field.load_default for name, field in declared.items() if not field.required}
    constant_defaults = {name: d for name, d in optional.items() if not callable(d)}
    factory_defaults = {name: d for name, d in optional.items() if callable(d)}

    def load_from(element: etree._Element) -> dict[str, Any]:
        out = constant_defaults.copy()
        for name, factory in factory_defaults.items():
            out[name] = factory()
        for child in element:
            tag = child.tag
            if type(tag) is not str:  # comments and processing instructions
                continue
            if tag[0] == "{":
                tag = tag.rpartition("}")[2]
            entry = plan.get(tag)
            if entry is None:
                continue  # unknown elements are excluded
            convert, container = entry
            if container and convert is not None:
                out[tag] = convert(child)
            elif len(child):  # an element where a value belongs: the dict path reports it
                raise _Fallback
            else:
                text = child.text
                if text:  # an empty or nil element counts as absent
                    out[tag] = text if convert is None else convert(text)
        if not required <= out.keys():  # required fields have no default: in ``out`` only when present
            raise _Fallback
        return out

    _ELEMENT_LOADERS[key] = load_from
    return load_from


def load_element(
    schema_class: type[Schema],
    element: etree._Element,
    *,
    what: str,
    lists: dict[str, str] | None = None,
    order_id: str | None = None,
) -> dict[str, Any]:
    """``load(schema_class, element_to_dict(element, lists), ...)`` in one walk over ``element``.

    :param lists: container tags (``OrderItems``) and their item tag (``Item``), as for ``element_to_dict``.
    :param order_id: names the order in errors when the element has no ``OxID`` of its own.
    """
    lists = lists or {}
    loader = _element_loader(schema_class, lists)  # a schema it cannot load is a programming error: raised
    try:
        return loader(element)
    except (_Fallback, ValidationError, ValueError, TypeError, ArithmeticError):
        pass
    raw = element_to_dict(element, lists)
    oxid = raw.get("OxID")
    return load(schema_class, raw, what=what, order_id=str(oxid) if oxid is not None else order_id)
