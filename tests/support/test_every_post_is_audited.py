"""Every POST the admin and the support console accept, enumerated from the URL resolver
and the admin's registry (each ModelAdmin's add, change, delete, history, custom URLs and
changelist actions; the site's own views; every support action), sent by support staff
and by a superuser, with data in every model. Each POST either changes nothing (refused)
or writes exactly one audit record naming the staff member: an audit entry on the
customer's timeline, or, for the operator's records that belong to no customer (staff
accounts, groups, service API keys, superusers only), one entry in the admin's log.
0 unaudited mutations."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from audit.models import Entry
from billing.models import Invoice, PaymentMethod, StripeEvent
from licensing.models import ServiceAPIKey
from support.actions import ACTIONS
from support.permissions import SUPPORT_GROUP
from tests.accounts.factories import MembershipFactory, UserFactory
from tests.support.conftest import staff_client

# The admin site's own views that take a POST: signing in and out touch the staff
# member's session only.
AUTHENTICATION = {"login", "logout"}
# Records of the operator's, no customer's: changed by superusers, logged by the admin.
OPERATOR_MODELS = {
    "accounts.user", "auth.group", "licensing.serviceapikey", "outgoing.endpoint",
}  # fmt: skip
# Rows a request may touch without changing anything anyone sees.
NOT_DATA = {"django_session"}


def fingerprint() -> dict[str, str]:
    digests = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if table in NOT_DATA:
                continue
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            rows = sorted(repr(row) for row in cursor.fetchall())
            digests[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return digests


def _patterns(resolver, prefix=""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def _form_data(response) -> dict:
    """What a browser would send back from an admin add or change page, unchanged."""
    data = {}
    form = response.context["adminform"].form
    for field in form:
        value = field.value()
        if value is None or field.field.disabled:
            continue
        if isinstance(value, list | tuple):
            data[field.html_name] = [str(v) for v in value]
        elif isinstance(value, bool):
            if value:
                data[field.html_name] = "on"
        else:
            data[field.html_name] = str(value)
    for formset in response.context.get("inline_admin_formsets", []):
        for field in formset.formset.management_form:
            data[field.html_name] = field.value()
    return data


def admin_posts(client, objects: dict) -> list[tuple[str, str, dict]]:
    """(what, url, data) for each POST the admin accepts, from its registry."""
    posts = []
    covered = set()
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        label = f"{opts.app_label}.{opts.model_name}"
        obj = objects.get(label) or model._default_manager.order_by("pk").first()
        for url_pattern in model_admin.get_urls():
            name = url_pattern.name
            covered.add(name)
            if name is None:  # the redirect of an old change URL
                continue
            arguments = set(url_pattern.pattern.converters)
            assert arguments <= {"object_id", "id"}, f"an admin URL of unknown shape: {name}"
            needs_id = bool(arguments)
            if needs_id and obj is None:
                continue
            url = reverse(f"admin:{name}", args=[quote(obj.pk)] if needs_id else [])
            if name.endswith("_changelist"):
                request = client.get(url).wsgi_request
                for action in model_admin.get_actions(request) if obj else []:
                    data = {"action": action, "_selected_action": [str(obj.pk)], "index": 0,
                            "post": "yes"}  # fmt: skip
                    posts.append((f"{label} action {action}", url, data))
                posts.append((f"{label} changelist", url, {}))
            elif name.endswith("_delete"):
                posts.append((f"{label} delete", url, {"post": "yes"}))
            elif name.endswith("_password_change"):
                password = "Another-long-pass-phrase-7"
                posts.append(
                    (f"{label} password", url, {"password1": password, "password2": password})
                )
            elif name.endswith("_change") or name.endswith("_add"):
                page = client.get(url)
                has_form = page.status_code == 200 and "adminform" in page.context
                data = _form_data(page) if has_form else {}
                data.update(OPERATOR_ADD.get(label, {}) if name.endswith("_add") else {})
                posts.append((f"{label} {name.rsplit('_', 1)[1]}", url, data))
            else:
                posts.append((f"{label} {name}", url, {}))
    return posts


OPERATOR_ADD = {
    "auth.group": {"name": "Operators"},
    "accounts.user": {"email": "newstaff@example.com", "password1": "A-long-pass-phrase-42",
                      "password2": "A-long-pass-phrase-42", "usable_password": "true"},
    "licensing.serviceapikey": {"name": "Another service"},
}  # fmt: skip


def support_posts(customer, objects) -> list[tuple[str, str, dict]]:
    invoice = Invoice.objects.filter(customer=customer).exclude(stripe_invoice_id="").first()
    card = PaymentMethod.objects.for_customer(customer).first()
    event = StripeEvent.objects.first()
    fields = {
        "trial_extend": {"trial_ends_on": (timezone.now() + timedelta(days=30)).date()},
        "invoice_retry": {"invoice": invoice.pk if invoice else 0,
                          "card": card.stripe_id if card else "pm_none"},
        "invoice_void": {"invoice": invoice.pk if invoice else 0},
        "plan_change": {"plan": "pro"},
        "coupon_apply": {"coupon": "SPRING20"},  # none at Stripe: a failed, recorded attempt
        "event_replay": {"event": event.pk if event else "evt_none"},
        "clock_advance": {"days": "1"},
        "spend_cap_set": {"amount": 5000, "thresholds": "50,100", "mode": "alert"},
        "erase": {"confirm": customer.customer_id},
    }  # fmt: skip
    # Erasing last: afterwards every action on the account is refused.
    names = sorted(ACTIONS, key=lambda name: name == "erase")
    posts = []
    for name in names:
        url = reverse("support:action", args=[customer.customer_id, name])
        posts.append((f"support {name}", url, {**fields.get(name, {}), "reason": "audit sweep"}))
        posts.append((f"support {name} without a reason", url, fields.get(name, {})))
    posts.append(("support page", reverse("support:customer", args=[customer.customer_id]), {}))
    posts.append(("support search", reverse("support:search"), {"q": "x"}))
    return posts


def test_every_admin_url_is_enumerated():
    """The resolver's admin URLs are the registry's, the site's own and the console's:
    nothing under /admin/ escapes the sweep below."""
    known = {"support:search", "support:customer", "support:action"}
    site = {"index", "login", "logout", "password_change", "password_change_done",
            "autocomplete", "jsi18n", "view_on_site", "app_list"}  # fmt: skip
    model_names = {p.name for ma in admin.site._registry.values() for p in ma.get_urls() if p.name}
    for route, pattern in _patterns(get_resolver()):
        if not route.startswith("admin/"):
            continue
        name = pattern.name
        if route.startswith("admin/support/") and pattern.name in {"search", "customer", "action"}:
            assert f"support:{name}" in known
            continue
        assert name is None or name in site or name in model_names, route


@pytest.mark.parametrize("who", ["support", "superuser"])
def test_every_post_writes_one_audit_record_naming_the_staff_member_or_is_refused(
    every_model_has_data,
    membership,
    other_membership,
    who,
):
    client = (
        staff_client("support@example.com", SUPPORT_GROUP)
        if who == "support"
        else staff_client("root@example.com", None, superuser=True)
    )
    staff = client.user
    client.raise_request_exception = False  # a 500 is counted, not raised
    another_staff = UserFactory(email="colleague@example.com", is_staff=True)
    # A customer of its own for the console's actions, with the journey's data.
    customer = membership.customer if who == "support" else other_membership.customer
    objects = {"accounts.user": another_staff, "auth.group": Group.objects.get(name="Support")}
    MembershipFactory()  # a customer with nothing, so lists are never empty

    posts = admin_posts(client, objects) + support_posts(customer, objects)
    assert len(posts) > 150
    accepted, refused, unaudited, errors = [], [], [], []
    for what, url, data in posts:
        entries, logs = Entry.objects.count(), LogEntry.objects.count()
        before = fingerprint()
        response = client.post(url, data)
        if response.status_code >= 500:
            errors.append((what, response.status_code))
            continue
        changed = {table for table, digest in fingerprint().items() if before.get(table) != digest}
        if not changed:
            refused.append(what)
            continue
        new_entries = list(Entry.objects.order_by("id")[entries:])
        new_logs = list(LogEntry.objects.order_by("id")[logs:])
        staff_entries = [e for e in new_entries if e.actor_id == staff.pk]
        staff_logs = [log for log in new_logs if log.user_id == staff.pk]
        operator = what.split(" ")[0] in OPERATOR_MODELS
        on_timeline = len(staff_entries) == 1 and not staff_logs
        in_admin_log = operator and len(staff_logs) == 1 and not staff_entries
        if on_timeline or in_admin_log:
            accepted.append(what)
        else:
            unaudited.append((what, sorted(changed), len(staff_entries), len(staff_logs)))

    assert errors == []
    assert unaudited == []
    # The console's actions are accepted (succeeded or failed, each recorded) for the
    # staff who may act; their versions without a reason are all refused.
    console = {w for w in accepted if w.startswith("support ")}
    assert {"support trial_extend", "support suspend", "support erase"} <= console
    assert not any(w.endswith("without a reason") for w in accepted)
    operator_changes = {w for w in accepted if w.split(" ")[0] in OPERATOR_MODELS}
    if who == "support":
        assert operator_changes == set()
    else:
        assert {"auth.group add", "accounts.user add", "licensing.serviceapikey add",
                "licensing.serviceapikey action revoke"} <= operator_changes  # fmt: skip
    assert ServiceAPIKey.objects.exists()
