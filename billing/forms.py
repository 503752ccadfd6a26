"""The billing details form (shape only; Stripe has the last word: an invalid VAT number
comes back from Stripe and is shown on its field) and the spend cap form."""

from decimal import Decimal

from django import forms

from billing_portal.money import currency_exponent
from licensing.models import SpendCap

from .gateway import BillingDetails

# Stripe's error `param` → our field.
STRIPE_PARAM_FIELDS = {
    "name": "name",
    "email": "email",
    "phone": "phone",
    "value": "vat_number",
    "type": "vat_number",
    "tax_id_data": "vat_number",
    **{f"address[{field}]": field for field in ("line1", "line2", "city", "postal_code", "state")},
    "address[country]": "country",
}


class BillingDetailsForm(forms.Form):
    name = forms.CharField(
        label="Name on invoices",
        max_length=256,
        required=False,
        help_text="A person or a company.",
    )
    email = forms.EmailField(
        label="Invoice email", required=False, help_text="Where invoices and receipts go."
    )
    phone = forms.CharField(label="Phone", max_length=40, required=False)
    line1 = forms.CharField(label="Address", max_length=200, required=False)
    line2 = forms.CharField(label="Address line 2", max_length=200, required=False)
    city = forms.CharField(max_length=200, required=False)
    postal_code = forms.CharField(label="Postal code", max_length=20, required=False)
    state = forms.CharField(label="State or region", max_length=200, required=False)
    country = forms.RegexField(
        regex=r"^[A-Za-z]{2}$",
        max_length=2,
        required=False,
        help_text="Two-letter country code, for example DE or US.",
        error_messages={"invalid": "Enter the two-letter country code, for example DE."},
    )
    vat_number = forms.CharField(
        label="VAT number",
        max_length=40,
        required=False,
        help_text="With its country prefix, for example DE123456789.",
    )
    attempt = forms.CharField(widget=forms.HiddenInput)

    def clean_country(self) -> str:
        return self.cleaned_data["country"].upper()

    def clean_vat_number(self) -> str:
        return self.cleaned_data["vat_number"].replace(" ", "").upper()

    def details(self) -> BillingDetails:
        data = {k: v for k, v in self.cleaned_data.items() if k != "attempt"}
        return BillingDetails(**data)

    def add_stripe_error(self, param: str | None, message: str) -> None:
        self.add_error(STRIPE_PARAM_FIELDS.get(param or ""), message)


INVOICE_TOTAL = ""  # the scope choice for a cap on the whole current invoice


class SpendCapForm(forms.Form):
    """A spend cap as a customer writes it: an amount in the plan's currency (major units,
    like 50 or 49.90), thresholds as percentages, and what to do at the cap."""

    scope = forms.ChoiceField(label="Cap on", required=False)
    amount = forms.DecimalField(
        label="Cap", min_value=Decimal("0.01"), max_digits=14, decimal_places=3,
        help_text="In your plan's currency, for one billing cycle.",
    )  # fmt: skip
    thresholds = forms.CharField(
        label="Alert at (%)", initial="50, 80, 100", max_length=100,
        help_text="Percentages of the cap, separated by commas: an email and a webhook each.",
    )  # fmt: skip
    mode = forms.ChoiceField(
        label="At the cap", choices=SpendCap.Mode.choices, widget=forms.RadioSelect,
        initial=SpendCap.Mode.ALERT,
    )  # fmt: skip

    def __init__(self, *args, features: list[tuple[str, str]], currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.fields["scope"].choices = [(INVOICE_TOTAL, "The invoice total"), *features]

    def clean_thresholds(self) -> list[int]:
        values = []
        for part in self.cleaned_data["thresholds"].replace(";", ",").split(","):
            part = part.strip().removesuffix("%").strip()
            if not part:
                continue
            if not part.isdigit():
                raise forms.ValidationError(
                    f"“{part}” is not a whole percentage: use numbers from 1 to 100.",
                    code="invalid",
                )
            if not 1 <= int(part) <= 100:
                raise forms.ValidationError(f"{part}% is outside 1 to 100.", code="out_of_range")
            values.append(int(part))
        if not values:
            raise forms.ValidationError("Give at least one percentage.", code="required")
        return sorted(set(values))

    def clean_amount(self) -> int:
        """In minor units of the currency (its exponent from Babel, never `* 100`)."""
        amount = self.cleaned_data["amount"]
        minor = amount.scaleb(currency_exponent(self.currency))
        if minor != minor.to_integral_value():
            raise forms.ValidationError(
                "More decimals than the currency has.", code="too_many_decimals"
            )
        return int(minor)
