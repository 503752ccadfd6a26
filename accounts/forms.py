"""Signup form: validates the input; `customer_signup` does the work."""

from django import forms
from django.contrib.auth import password_validation

from .models import User

EMAIL_TAKEN_MESSAGE = "An account with this email address already exists. Sign in instead?"


class SignupForm(forms.Form):
    email = forms.EmailField(
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validation.password_validators_help_text_html(),
    )
    company_name = forms.CharField(
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
        help_text="Optional. Shown on your account page.",
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if User.objects.email_taken(email):
            raise forms.ValidationError(EMAIL_TAKEN_MESSAGE, code="email_taken")
        return email

    def clean(self):
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            # Validate against a user with this email, so the similarity check can work.
            candidate = User(email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(password, candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned
