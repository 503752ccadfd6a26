"""The billing details form. It validates shape only; Stripe has the last word (an invalid
VAT number comes back from Stripe and is shown on its field)."""

from django import forms

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
