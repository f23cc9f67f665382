"""Daraja's payloads, named as Safaricom names them (typos included: `Occassion`,
`RecieverIdentifierType`, `OriginatorCoversationID` are the real field names)."""

from __future__ import annotations

from typing import Any

import msgspec


class TokenResponse(msgspec.Struct):
    access_token: str
    expires_in: int | str


class ErrorEnvelope(msgspec.Struct):
    errorCode: str
    errorMessage: str = ""
    requestId: str | None = None


# -- M-Pesa Express ---------------------------------------------------------------------


class StkPushRequest(msgspec.Struct, omit_defaults=True):
    BusinessShortCode: str
    Password: str
    Timestamp: str
    TransactionType: str
    Amount: int | str
    PartyA: str
    PartyB: str
    PhoneNumber: str
    CallBackURL: str
    AccountReference: str
    TransactionDesc: str = ""


class StkPushResponse(msgspec.Struct):
    MerchantRequestID: str
    CheckoutRequestID: str
    ResponseCode: str
    ResponseDescription: str = ""
    CustomerMessage: str = ""


class StkQueryRequest(msgspec.Struct):
    BusinessShortCode: str
    Password: str
    Timestamp: str
    CheckoutRequestID: str


class StkQueryResponse(msgspec.Struct):
    ResponseCode: str
    CheckoutRequestID: str = ""
    MerchantRequestID: str = ""
    ResponseDescription: str = ""
    ResultCode: str | int | None = None
    ResultDesc: str = ""


class Item(msgspec.Struct):
    Name: str
    Value: Any = None


class CallbackMetadata(msgspec.Struct):
    Item: list[Item] = []


class StkCallback(msgspec.Struct):
    MerchantRequestID: str
    CheckoutRequestID: str
    ResultCode: int | str
    ResultDesc: str = ""
    CallbackMetadata: CallbackMetadata | None = None


class StkCallbackBody(msgspec.Struct):
    stkCallback: StkCallback


class StkCallbackEnvelope(msgspec.Struct):
    Body: StkCallbackBody


# -- B2C, Transaction Status, Reversal, Account Balance ----------------------------------


class B2CRequest(msgspec.Struct):
    OriginatorConversationID: str
    InitiatorName: str
    SecurityCredential: str
    CommandID: str
    Amount: int | str
    PartyA: str
    PartyB: str
    Remarks: str
    QueueTimeOutURL: str
    ResultURL: str
    Occassion: str = ""


class TransactionStatusRequest(msgspec.Struct, omit_defaults=True):
    Initiator: str
    SecurityCredential: str
    CommandID: str
    PartyA: str
    IdentifierType: str
    ResultURL: str
    QueueTimeOutURL: str
    Remarks: str
    TransactionID: str = ""
    OriginalConversationID: str = ""
    Occasion: str = ""


class ReversalRequest(msgspec.Struct):
    Initiator: str
    SecurityCredential: str
    CommandID: str
    TransactionID: str
    Amount: int | str
    ReceiverParty: str
    RecieverIdentifierType: str
    ResultURL: str
    QueueTimeOutURL: str
    Remarks: str
    Occasion: str = ""


class AccountBalanceRequest(msgspec.Struct):
    Initiator: str
    SecurityCredential: str
    CommandID: str
    PartyA: str
    IdentifierType: str
    Remarks: str
    QueueTimeOutURL: str
    ResultURL: str


class AsyncAck(msgspec.Struct):
    """The synchronous answer of B2C, Transaction Status, Reversal and Account Balance."""

    ResponseCode: str
    ConversationID: str = ""
    OriginatorConversationID: str = ""
    ResponseDescription: str = ""


class KeyValue(msgspec.Struct):
    Key: str
    Value: Any = None


class ResultParameters(msgspec.Struct):
    # a list, or a single object in some samples
    ResultParameter: list[KeyValue] | KeyValue = []


class ReferenceData(msgspec.Struct):
    ReferenceItem: list[KeyValue] | KeyValue = []


class Result(msgspec.Struct):
    ResultCode: int | str
    ResultDesc: str = ""
    ResultType: int | str | None = None
    OriginatorConversationID: str = ""
    ConversationID: str = ""
    TransactionID: str = ""
    ResultParameters: ResultParameters | None = None
    ReferenceData: ReferenceData | None = None

    def parameters(self) -> dict[str, Any]:
        if self.ResultParameters is None:
            return {}
        items = self.ResultParameters.ResultParameter
        if isinstance(items, KeyValue):
            items = [items]
        return {item.Key: item.Value for item in items}


class ResultEnvelope(msgspec.Struct):
    Result: Result


# -- C2B --------------------------------------------------------------------------------


class RegisterUrlRequest(msgspec.Struct):
    ShortCode: str
    ResponseType: str
    ConfirmationURL: str
    ValidationURL: str


class RegisterUrlResponse(msgspec.Struct):
    ResponseCode: str
    ResponseDescription: str = ""
    OriginatorCoversationID: str = ""


class C2BSimulateRequest(msgspec.Struct):
    ShortCode: str | int
    CommandID: str
    Amount: int | str
    Msisdn: str | int
    BillRefNumber: str = ""


class C2BTransaction(msgspec.Struct):
    """The body of a C2B validation or confirmation (all strings)."""

    TransactionType: str
    TransID: str
    TransTime: str
    TransAmount: str
    BusinessShortCode: str
    BillRefNumber: str = ""
    InvoiceNumber: str = ""
    OrgAccountBalance: str = ""
    ThirdPartyTransID: str = ""
    MSISDN: str = ""
    FirstName: str = ""
    MiddleName: str = ""
    LastName: str = ""
