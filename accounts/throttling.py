"""How django-axes names the account a failed login was for."""


def login_username(request, credentials: dict | None) -> str | None:
    # Django's login form posts the email as `username`; Axes would look for `email`.
    username = (credentials or {}).get("username") or request.POST.get("username")
    return username.strip().lower() if username else None
