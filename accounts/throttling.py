"""Throttles for the account pages: login failures (through django-axes) and a cache
counter for the requests that send email (password resets, signups, verification links)."""

import hashlib
import time

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_ip_address, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone


def login_username(request, credentials: dict | None) -> str | None:
    # Django's login form posts the email as `username`; Axes would look for `email`.
    username = (credentials or {}).get("username") or request.POST.get("username")
    return username.strip().lower() if username else None


class LoginThrottleHandler(AxesDatabaseHandler):
    """Axes locks one email from one address after AXES_FAILURE_LIMIT failures; this also
    locks the address itself after LOGIN_ADDRESS_FAILURE_LIMIT failures across all emails,
    so one client cannot try a common password against many accounts (spraying). The
    address limit is higher because offices share one address."""

    def is_locked(self, request, credentials: dict | None = None) -> bool:
        return super().is_locked(request, credentials) or self._address_locked(request)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request=request, **kwargs)
        if (
            request is not None
            and not getattr(request, "axes_locked_out", False)
            and not self.is_whitelisted(request, credentials)
        ):
            # The failure that reaches the limit is answered with the lockout page too.
            request.axes_locked_out = self._address_locked(request)

    @staticmethod
    def _address_locked(request) -> bool:
        ip_address = getattr(request, "axes_ip_address", None)
        if not ip_address:
            return False
        attempts = AccessAttempt.objects.filter(ip_address=ip_address)
        cool_off = get_cool_off(request)
        if cool_off is not None:  # no cool-off: failures count until staff reset them
            now = getattr(request, "axes_attempt_time", None) or timezone.now()
            attempts = attempts.filter(attempt_time__gte=now - cool_off)
        failures = attempts.aggregate(total=Sum("failures_since_start"))["total"]
        return (failures or 0) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT


def client_address(request: HttpRequest) -> str:
    """The client's IP address, read the way Axes reads it (so proxies are handled once)."""
    return get_client_ip_address(request) or "unknown"


def rate_limit_hit(*, scope: str, key: str, limit: int, window: int) -> bool:
    """Count one request for (scope, key) and say whether it is over `limit` requests in
    the current window of `window` seconds. Fixed windows: simple, and a burst at a window's
    edge gets at most twice the limit. Keys are hashed: emails do not land in the cache."""
    bucket = int(time.time() // window)
    digest = hashlib.sha256(key.strip().lower().encode()).hexdigest()
    cache_key = f"throttle:{scope}:{bucket}:{digest}"
    # add() only creates the counter; incr() is atomic on Redis and within one process.
    cache.add(cache_key, 0, timeout=window * 2)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add() and incr()
        cache.set(cache_key, 1, timeout=window * 2)
        count = 1
    return count > limit
