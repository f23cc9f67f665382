"""M-Pesa settings, filled from `MMO_MPESA_*` variables.

The defaults are Daraja's public sandbox values (shortcode 174379 and its passkey, the
`testapi` initiator, B2C shortcode 600996, C2B shortcode 600984) and the simulator's own
test certificate, so the plugin runs against the bundled simulator with no configuration.
"""

from __future__ import annotations

from importlib import resources
from typing import ClassVar, Literal

from mmo_core.settings import ProviderSettings

SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


def bundled(name: str) -> str:
    """A file shipped in `mmo_mpesa/sandbox/` (the simulator's TEST key pair)."""
    return resources.files("mmo_mpesa").joinpath("sandbox", name).read_text()


class MpesaSettings(ProviderSettings):  # kw_only and forbid_unknown_fields are inherited
    """Daraja credentials and shortcodes; see plugins/mpesa/README.md for each variable."""

    consumer_key: str = "mmo-sandbox-consumer-key"
    consumer_secret: str = "mmo-sandbox-consumer-secret"
    # M-Pesa Express (STK push)
    shortcode: str = "174379"
    passkey: str = SANDBOX_PASSKEY
    transaction_type: Literal["CustomerPayBillOnline", "CustomerBuyGoodsOnline"] = (
        "CustomerPayBillOnline"
    )
    till_number: str = ""  # PartyB for CustomerBuyGoodsOnline (the shortcode is the store)
    transaction_desc: str = "Payment"
    # B2C, Transaction Status, Reversal, Account Balance
    b2c_shortcode: str = "600996"
    b2c_command_id: Literal["BusinessPayment", "SalaryPayment", "PromotionPayment"] = (
        "BusinessPayment"
    )
    initiator_name: str = "testapi"
    initiator_password: str = "Safaricom999!*!"
    # PEM of Safaricom's certificate (sandbox or production), or a path to it
    certificate: str = ""
    certificate_file: str = ""
    # C2B
    c2b_shortcode: str = "600984"
    c2b_response_type: Literal["Completed", "Cancelled"] = "Completed"
    c2b_api_version: Literal["v1", "v2"] = "v2"
    # Daraja refuses C2B URLs containing "mpesa": a public alias of /api/v1/webhooks/mpesa/
    c2b_url_prefix: str = ""
    # C2B validation: ask the orchestrator at this URL (empty: accept every payment)
    c2b_validation_url: str = ""
    c2b_validation_secret: str = ""  # signs the question (Mmo-Signature, as events)
    c2b_validation_timeout: float = 3.0  # Daraja waits about 8 s in all
    c2b_validation_on_timeout: Literal["accept", "reject"] = "accept"
    # seconds `status`, `reverse` and `balance` wait for Daraja's asynchronous Result
    result_wait: float = 4.0
    # simulator only: seconds between a request and its callback
    callback_delay: float = 0.5
    # simulator only: send C2B validation requests before confirmations
    simulator_validation: bool = True

    required_in_production: ClassVar[tuple[str, ...]] = (
        "base_url",
        "consumer_key",
        "consumer_secret",
        "shortcode",
        "passkey",
        "b2c_shortcode",
        "initiator_name",
        "initiator_password",
        "certificate_file",
    )
    secret_fields: ClassVar[tuple[str, ...]] = (
        "callback_secret",
        "consumer_secret",
        "passkey",
        "initiator_password",
        "c2b_validation_secret",
    )

    def certificate_pem(self) -> str:
        """Safaricom's certificate; by default the simulator's TEST certificate."""
        if self.certificate:
            return self.certificate
        if self.certificate_file:
            with open(self.certificate_file, encoding="ascii") as handle:
                return handle.read()
        return bundled("simulator-cert.pem")
