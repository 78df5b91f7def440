"""Element names and order of the Oxatis entities the sandbox serves (oxatis-api.md §3.10, XSD, WSDL).

``WSDL_ONLY`` lists the elements of the 2021 WSDL that the older XSDs lack, so
that a test can validate replies against the XSDs for the fields they cover.
"""

from __future__ import annotations

SUMMARY_FIELDS = (
    "OxID", "Date", "BillingFirstName", "BillingLastName", "SubTotalVAT", "ShippingPriceTaxExcl",
    "NetAmountDue", "ShippingVATAmount", "PaymentStatusCode", "ProgressStateID", "FollowUp",
    "SubTotalNetVATExcluded", "SourceTypeID", "CampaignTrackingID", "Shipped", "PaymentFeesTaxExc",
    "PaymentFeesVATAmount",
)

BASE_FIELDS = (
    # WSDL-only group first (§3.10, 1)
    "LoyaltyPointsEarned", "LoyaltyPointsUsed", "OrderFlags", "UserTypology", "LegalForm", "NAFCode",
    "TrackingNumberReturn", "CustomerCode", "Gift", "GiftMessage",
    # (§3.10, 2)
    "DispatchDate", "UserEmail", "UserOxID", "BillingTitle", "BillingCompany", "BillingAddress",
    "BillingAddressL1", "BillingAddressL2", "BillingAddressL3", "BillingAddressL4", "BillingAddressFloor",
    "BillingAddressBuilding", "BillingAddressStreet", "BillingAddressOtherInfo", "BillingZipCode", "BillingCity",
    "BillingState", "BillingStateName", "BillingCountryISOCode", "BillingCountryName", "BillingPhone",
    "BillingCellPhone", "BillingFax", "CompanyVATNumber", "ShippingCompany", "ShippingTitle", "ShippingFirstName",
    "ShippingLastName", "ShippingAddress", "ShippingAddressL1", "ShippingAddressL2", "ShippingAddressL3",
    "ShippingAddressL4", "ShippingAddressFloor", "ShippingAddressBuilding", "ShippingAddressStreet",
    "ShippingAddressOtherInfo", "ShippingZipCode", "ShippingCity", "ShippingState", "ShippingStateName",
    "ShippingCountryISOCode", "ShippingCountryName", "ShippingPhone", "ShippingInfo",
    # (§3.10, 3)
    "VATIncluded", "EcoTaxIncluded", "SubTotalNet", "SubTotalNetDiscounted", "GlobalDiscountRate",
    "GlobalDiscountAmount", "ShippingID", "ShippingMethodName", "ShippingProcessorCode", "ShippingParam1",
    "ShippingParam2", "ShippingParam3", "ShippingTaxRate", "ShippingPriceTaxIncl", "EcoTaxAmountTaxIncl",
    "CartCoupon", "LogisticsServiceProviderAccess", "LogisticsServiceProviderInstructions", "Language",
    "PaymentMethodID", "PaymentMethodName", "PMProcessorCode", "PaymentStatusLastModifiedDate", "PMPTransactionID",
    "RemoteIPAddr", "SalesRepCode", "SalesRepFirstName", "SalesRepLastName", "SpecialInstructions", "CurrencyCode",
    # (§3.10, 4)
    "InvoiceDate", "InvoiceID", "InvoiceFileName", "InvoiceURL", "InternalNote", "FiscalCode", "TrackingNumber",
    "SourceOrderID", "PointOfSales", "DateOfDelivery", "DateOfPicking", "InvoiceStep", "CustomData",
    "TransportName", "TrackingUrl",
    # (§3.10, 5)
    "CustomFieldText1", "CustomFieldText2", "CustomFieldText3", "CustomFieldText4", "CustomFieldNumeric1",
    "CustomFieldNumeric2", "CustomFieldDate", "AmountTaxesVATExc", "AmountTaxesVATInc", "AmountTaxesVATAmount",
    "ShippingTaxFormula", "ShippingAmountTaxList", "PMTFeesTaxFormula", "PMTFeesAmountTaxList", "Comment",
    "ShippingUserAddressID", "ShippingUserAddressLabel", "PaymentFeesTaxInc", "PaymentFeesTaxRate",
    "CashOnDelivery", "OrderTaxDetails",
)

ORDER_FIELDS = (*SUMMARY_FIELDS, *BASE_FIELDS, "TotalWeight", "OrderItems")

ITEM_FIELDS = (
    "OxID", "ItemOxID", "ItemSKU", "ItemSKUOriginal", "ItemName", "GrossPrice", "GrossAmount", "TaxRate",
    "DiscountRate", "NetPrice", "NetAmount", "VATAmount", "EcoTaxValueTaxIncl", "DiscountCoupon",
    "Attribute1Name", "Attribute1Value", "Attribute2Name", "Attribute2Value", "AttributeTextName",
    "AttributeTextValue", "ItemMainImageUrl", "ItemThumbnailImageUrl", "Option1Name", "Option1Value",
    "Option2Name", "Option2Value", "Option3Name", "Option3Value", "Offered", "PackagingName", "LinkedTo",
    # WSDL-only line fields; ATOMIC's real reply shows TaxAmounts just before Quantity
    "EANCode", "Weight", "DimensionHeight", "DimensionWidth", "DimensionLength", "ItemDeliveryDate",
    "TaxFormula", "AmountTaxList", "TaxAmounts",
    "Quantity", "PackagingQty", "BundledItems",
)

BUNDLED_ITEM_FIELDS = (
    "OxID", "ItemOxID", "ItemSKU", "ItemName", "GrossPrice", "ItemMainImageUrl", "ItemThumbnailImageUrl",
    "Option1Name", "Option1Value", "Option2Name", "Option2Value", "Option3Name", "Option3Value", "Offered",
    "Quantity",
)

PROGRESS_STATE_FIELDS = ("OxID", "Color", "Code", "NameFR", "NameEN", "Publish", "SendMail", "UpdateOrders",
                         "CreateInvoice")

LOG_FIELDS = ("OxID", "ProgressStateNameEN", "Color", "OrderID", "Date", "ProgressStateName", "Comment",
              "Published", "ID", "Code")

WSDL_ONLY = frozenset({
    "LoyaltyPointsEarned", "LoyaltyPointsUsed", "OrderFlags", "UserTypology", "LegalForm", "NAFCode",
    "TrackingNumberReturn", "CustomerCode", "Gift", "GiftMessage", "ShippingParam3", "PaymentMethodID",
    "PMPTransactionID", "AmountTaxesVATExc", "AmountTaxesVATInc", "AmountTaxesVATAmount", "ShippingTaxFormula",
    "ShippingAmountTaxList", "PMTFeesTaxFormula", "PMTFeesAmountTaxList", "Comment",
    "EANCode", "Weight", "DimensionHeight", "DimensionWidth", "DimensionLength", "ItemDeliveryDate",
    "TaxFormula", "AmountTaxList", "TaxAmounts", "PageInformation", "ID", "Code",
})
