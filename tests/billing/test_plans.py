"""Plans end to end through the Stripe emulator: trial → paid through the hosted Checkout,
plan change at the previewed price, cancel at period end, resume, and the end of the
subscription when a test clock passes it. The plan projection follows Stripe whatever the
order of the webhooks, and each email goes out once per change."""

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import Entry
from billing.cards import billing_info_ensure
from billing.models import PaymentMethod
from billing.setup import catalog_push
from licensing.catalog import catalog_read
from licensing.models import CustomerPlan, License
from licensing.verify import license_verify

pytestmark = pytest.mark.django_db(transaction=True)  # emails are queued on commit

PLANS_URL = reverse("billing:plans")
DAY = 24 * 3600


@pytest.fixture
def catalog(stripe_emulator):
    catalog_push(catalog=catalog_read())


@pytest.fixture
def clock(stripe_client, membership, catalog):
    """The customer's Stripe customer lives on a test clock, so time can be moved on.
    The portal finds it by the customer id in its metadata, as it would a lost link."""
    clock = stripe_client.v1.test_helpers.test_clocks.create({"frozen_time": int(time.time())})
    stripe_client.v1.customers.create(
        {
            "email": "owner@example.com",
            "test_clock": clock.id,
            "metadata": {"customer_id": membership.customer.customer_id},
        }
    )
    billing_info_ensure(customer=membership.customer, email="owner@example.com")
    return clock


def end_trial(customer) -> None:
    customer.trial_ends_at = timezone.now() - timedelta(days=1)
    customer.save()


def follow(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}", follow=True)


def upgrade(client, stripe_emulator, code: str, token: str = "pm_card_visa"):
    page = client.get(PLANS_URL)
    response = client.post(
        reverse("billing:plan_upgrade", args=[code]), {"attempt": page.context["attempt"]}
    )
    assert response.status_code == 302, response
    return follow(client, stripe_emulator.complete_checkout(response.url, token))


def sent(template_subject: str) -> int:
    return sum(1 for message in mail.outbox if template_subject in message.subject)


def projection(customer) -> tuple:
    plan = CustomerPlan.objects.get(customer=customer)
    return (plan.plan.code, plan.status, plan.current_period_end, plan.cancel_at_period_end)


def shuffle_and_duplicate(stripe_emulator) -> None:
    """For the next step's webhooks, with the emulator's fault modes: the first and fourth
    are sent twice, the second and third swapped, and all the rest sent in reverse order
    (held until the step's delivery)."""
    for kind, count in [
        ("webhook_duplicate", 1),
        ("webhook_out_of_order", 2),
        ("webhook_duplicate", 1),
        ("webhook_out_of_order", 1000),
    ]:
        stripe_emulator.faults.add({"kind": kind, "count": count})


def run_journey(client, membership, stripe_emulator, stripe_client, clock, *, faults=False):
    """Every step of the issue's journey, delivering the webhooks after each."""
    customer = membership.customer
    end_trial(customer)

    def step() -> None:
        stripe_emulator.faults.clear()
        if faults:
            shuffle_and_duplicate(stripe_emulator)

    step()

    page = upgrade(client, stripe_emulator, "starter")
    assert "Welcome to Starter" in page.content.decode()
    stripe_emulator.deliver()
    starter = CustomerPlan.objects.get(customer=customer)
    assert (starter.plan.code, starter.status) == ("starter", "active")
    subscription = stripe_client.v1.subscriptions.retrieve(starter.subscription_id)
    period_end = subscription["items"].data[0].current_period_end
    assert starter.current_period_end == datetime.fromtimestamp(period_end, UTC)
    assert period_end - clock.frozen_time in range(28 * DAY, 32 * DAY)
    assert subscription.metadata.customer_id == customer.customer_id
    license = License.objects.get(customer=customer, revoked_at__isnull=True)
    claims = license_verify(license.token, client.get("/.well-known/jwks.json").json())
    assert (claims["plan"], claims["status"]) == ("starter", "active")
    assert claims["exp"] == period_end + 3 * DAY  # the paid period and a short grace

    step()
    preview = client.get(reverse("billing:plan_change", args=["pro"]))
    assert preview.status_code == 200
    previewed = preview.context["preview"].amount_due
    assert previewed > 0
    client.post(
        reverse("billing:plan_change", args=["pro"]), {"proration": preview.context["proration"]}
    )
    stripe_emulator.deliver()
    invoice = stripe_client.v1.invoices.list({"subscription": starter.subscription_id}).data[0]
    assert invoice.billing_reason == "subscription_update"
    assert invoice.amount_due == previewed
    assert CustomerPlan.objects.get(customer=customer).plan.code == "pro"

    step()
    client.post(reverse("billing:plan_cancel"), {"confirm": "yes"})
    stripe_emulator.deliver()
    assert CustomerPlan.objects.get(customer=customer).cancel_at_period_end
    step()
    client.post(reverse("billing:plan_resume"))
    stripe_emulator.deliver()
    assert not CustomerPlan.objects.get(customer=customer).cancel_at_period_end
    step()
    client.post(reverse("billing:plan_cancel"), {"confirm": "yes"})
    stripe_emulator.deliver()

    step()
    stripe_emulator.advance_clock(clock.id, period_end + DAY)
    final = CustomerPlan.objects.get(customer=customer)
    assert projection(customer) == stripe_truth(stripe_client, final.subscription_id)
    license = License.objects.get(customer=customer, revoked_at__isnull=True)
    claims = license_verify(license.token, client.get("/.well-known/jwks.json").json())
    assert (claims["plan"], claims["status"], claims["features"]) == (None, "canceled", {})
    return projection(customer)


def stripe_truth(stripe_client, subscription_id) -> tuple:
    """The projection the subscription as Stripe has it calls for."""
    subscription = stripe_client.v1.subscriptions.retrieve(subscription_id)
    item = subscription["items"].data[0]
    return (
        item.price.product.removeprefix("plan_"),
        subscription.status,
        datetime.fromtimestamp(item.current_period_end, UTC),
        subscription.cancel_at_period_end,
    )


def test_trial_to_paid_change_cancel_resume_and_end(
    signed_in_client, membership, other_membership, stripe_emulator, stripe_client, clock
):
    final = run_journey(signed_in_client, membership, stripe_emulator, stripe_client, clock)

    assert final[:2] == ("pro", "canceled")
    assert sent("Your Starter plan is active") == 1
    assert sent("You are now on the Pro plan") == 1
    assert sent("Your Pro plan will end on") == 2  # cancelled twice
    assert sent("Your Pro plan has ended") == 1
    assert {m.to[0] for m in mail.outbox} == {"owner@example.com"}
    kinds = list(
        Entry.objects.filter(customer=membership.customer, kind__contains="plan")
        .order_by("id")
        .values_list("kind", flat=True)
    )
    assert kinds == ["plan_activated", "plan_changed"]
    assert not CustomerPlan.objects.filter(customer=other_membership.customer).exists()
    page = signed_in_client.get(PLANS_URL).content.decode()
    assert "Your Pro plan has ended" in page


def test_shuffled_and_duplicated_webhooks_converge_with_each_email_once(
    signed_in_client, membership, stripe_emulator, stripe_client, clock
):
    final = run_journey(
        signed_in_client, membership, stripe_emulator, stripe_client, clock, faults=True
    )

    assert final[:2] == ("pro", "canceled")
    delivered = [d["event"] for d in stripe_emulator.emulator.webhooks.deliveries()]
    assert len(delivered) > len(set(delivered))  # some were sent twice
    created = [e.id for e in stripe_client.v1.events.list({"limit": 100}).auto_paging_iter()]
    created.reverse()
    assert list(dict.fromkeys(delivered)) != [e for e in created if e in set(delivered)]
    counts = Counter(re.sub(r" on \d.*$", "", message.subject) for message in mail.outbox)
    assert counts == {
        "Your Starter plan is active": 1,
        "You are now on the Pro plan": 1,
        "Your Pro plan will end": 2,
        "Your Pro plan has ended": 1,
        # A license for each change of what it states: Starter, Pro, then none.
        "Your Billing Portal license (Starter)": 1,
        "Your Billing Portal license (Pro)": 1,
        "Your Billing Portal license": 1,
    }


def test_upgrading_during_the_trial_keeps_the_remaining_days(
    signed_in_client, membership, stripe_emulator, stripe_client, catalog
):
    trial_end = membership.customer.trial_ends_at
    upgrade(signed_in_client, stripe_emulator, "pro")

    plan = CustomerPlan.objects.get(customer=membership.customer)
    assert (plan.plan.code, plan.status) == ("pro", "trialing")
    subscription = stripe_client.v1.subscriptions.retrieve(plan.subscription_id)
    assert subscription.trial_end == int(trial_end.timestamp())
    assert sent("Your Pro plan is active") == 1
    assert "the first payment is taken then" in mail.outbox[-1].body


def test_a_plan_without_trial_starts_paying_at_once(
    signed_in_client, membership, stripe_emulator, stripe_client, catalog
):
    upgrade(signed_in_client, stripe_emulator, "business")
    plan = CustomerPlan.objects.get(customer=membership.customer)
    assert (plan.plan.code, plan.status) == ("business", "active")


def test_two_tabs_upgrading_make_one_subscription(
    signed_in_client, membership, stripe_emulator, stripe_client, catalog
):
    end_trial(membership.customer)
    page = signed_in_client.get(PLANS_URL)
    first = signed_in_client.post(
        reverse("billing:plan_upgrade", args=["starter"]), {"attempt": page.context["attempt"]}
    )
    second_page = signed_in_client.get(PLANS_URL)
    second = signed_in_client.post(
        reverse("billing:plan_upgrade", args=["pro"]), {"attempt": second_page.context["attempt"]}
    )
    follow(signed_in_client, stripe_emulator.complete_checkout(second.url))

    # The first tab's Checkout was expired when the second opened.
    stale = stripe_emulator.http.dispatch("POST", first.url, {}, "payment_method=pm_card_visa")
    assert stale.status != 303
    stripe_emulator.deliver()
    subscriptions = stripe_client.v1.subscriptions.list(
        {"customer": membership.customer.billing.billing_info.stripe_id, "status": "all"}
    ).data
    assert [s.status for s in subscriptions] == ["active"]

    # And a third try, with a plan live, is sent to the plans page.
    again = signed_in_client.post(
        reverse("billing:plan_upgrade", args=["starter"]), {"attempt": "x"}, follow=True
    )
    assert "You already have a plan" in again.content.decode()


@pytest.mark.parametrize("code", ["nope", "trial"])
def test_unknown_or_unsold_plans_are_404(signed_in_client, stripe_emulator, catalog, code):
    response = signed_in_client.post(reverse("billing:plan_upgrade", args=[code]))
    assert response.status_code == 404
    assert signed_in_client.get(reverse("billing:plan_change", args=[code])).status_code == 404


def test_an_inactive_plan_is_404(signed_in_client, stripe_emulator, catalog):
    from licensing.models import Plan

    Plan.objects.filter(code="business").update(is_active=False)
    response = signed_in_client.post(reverse("billing:plan_upgrade", args=["business"]))
    assert response.status_code == 404


def test_another_customers_checkout_session_on_the_success_page_is_404(
    signed_in_client, membership, other_membership, stripe_emulator, catalog
):
    billing_info_ensure(customer=membership.customer, email="owner@example.com")
    other = Client()
    other.force_login(other_membership.user)
    page = other.get(PLANS_URL)
    response = other.post(
        reverse("billing:plan_upgrade", args=["pro"]), {"attempt": page.context["attempt"]}
    )
    return_url = urlsplit(stripe_emulator.complete_checkout(response.url))

    mine = signed_in_client.get(f"{return_url.path}?{return_url.query}")

    assert mine.status_code == 404
    assert not CustomerPlan.objects.filter(customer=membership.customer).exists()


def test_changing_plan_without_a_card_sends_to_add_one(
    signed_in_client, membership, stripe_emulator, stripe_client, catalog
):
    end_trial(membership.customer)
    upgrade(signed_in_client, stripe_emulator, "starter")
    [card] = PaymentMethod.objects.for_customer(membership.customer)  # the one Checkout took
    stripe_client.v1.payment_methods.detach(card.stripe_id)
    stripe_emulator.deliver()

    response = signed_in_client.get(reverse("billing:plan_change", args=["pro"]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("billing:payment_methods")
    assert "Add a card first" in response.content.decode()


def test_a_stripe_error_on_change_is_a_message_and_nothing_changes(
    signed_in_client, membership, stripe_emulator, stripe_client, clock
):
    end_trial(membership.customer)
    upgrade(signed_in_client, stripe_emulator, "starter")
    stripe_emulator.deliver()
    preview = signed_in_client.get(reverse("billing:plan_change", args=["pro"]))
    stripe_emulator.faults.add(
        {"kind": "error_500", "method": "POST", "path": "/v1/subscriptions", "count": 3}
    )
    response = signed_in_client.post(
        reverse("billing:plan_change", args=["pro"]),
        {"proration": preview.context["proration"]},
        follow=True,
    )
    assert "not responding right now" in response.content.decode()
    assert CustomerPlan.objects.get(customer=membership.customer).plan.code == "starter"


def test_a_tampered_proration_is_refused(
    signed_in_client, membership, stripe_emulator, stripe_client, clock
):
    end_trial(membership.customer)
    upgrade(signed_in_client, stripe_emulator, "starter")
    stripe_emulator.deliver()
    response = signed_in_client.post(
        reverse("billing:plan_change", args=["pro"]), {"proration": "1234567890"}, follow=True
    )
    assert "That preview has expired" in response.content.decode()
    assert CustomerPlan.objects.get(customer=membership.customer).plan.code == "starter"


def test_plans_page_lists_the_catalog_and_marks_the_current_plan(
    signed_in_client, membership, stripe_emulator, stripe_client, catalog
):
    page = signed_in_client.get(PLANS_URL).content.decode()
    assert "14 days left" in page
    assert "€19.00" in page and "€49.00" in page and "€199.00" in page
    assert "10,000 calls a month" in page
    assert "Free trial" not in page.split("</section>", 1)[1]  # the trial plan is not sold

    upgrade(signed_in_client, stripe_emulator, "pro")
    page = signed_in_client.get(PLANS_URL).content.decode()
    assert "Current plan" in page
    assert "You are on <strong>Pro</strong>" in page


def test_a_double_click_on_choose_keeps_a_payable_checkout(
    signed_in_client, membership, stripe_emulator, stripe_client, catalog
):
    end_trial(membership.customer)
    page = signed_in_client.get(PLANS_URL)
    data = {"attempt": page.context["attempt"]}
    first = signed_in_client.post(reverse("billing:plan_upgrade", args=["starter"]), data)
    second = signed_in_client.post(reverse("billing:plan_upgrade", args=["starter"]), data)

    assert first.url == second.url
    follow(signed_in_client, stripe_emulator.complete_checkout(second.url))
    assert CustomerPlan.objects.get(customer=membership.customer).status == "active"


def test_a_paid_subscription_our_records_miss_still_blocks_a_second(
    signed_in_client, membership, stripe_emulator, stripe_client, catalog
):
    end_trial(membership.customer)
    page = signed_in_client.get(PLANS_URL)
    response = signed_in_client.post(
        reverse("billing:plan_upgrade", args=["starter"]), {"attempt": page.context["attempt"]}
    )
    stripe_emulator.complete_checkout(response.url)  # tab closed: no return page, no webhooks

    again = signed_in_client.post(
        reverse("billing:plan_upgrade", args=["pro"]), {"attempt": "other"}, follow=True
    )
    assert "You already have a plan" in again.content.decode()
    subscriptions = stripe_client.v1.subscriptions.list({"status": "all"}).data
    assert len(subscriptions) == 1


RAW_STRIPE_WORDING = ("Keys for idempotent", "No such", "Only Checkout Sessions", "parameter")


def test_ten_concurrent_upgrade_starts_leave_exactly_one_payable_checkout(
    membership, other_membership, stripe_emulator, stripe_client, catalog
):
    import threading

    from django.db import connection

    end_trial(membership.customer)
    barrier = threading.Barrier(10)
    pages = []

    def start(i: int) -> None:
        client = Client()
        client.force_login(membership.user)
        try:
            barrier.wait()
            code = "starter" if i % 2 else "pro"
            response = client.post(
                reverse("billing:plan_upgrade", args=[code]), {"attempt": f"{i:032x}"}
            )
            landed = client.get(response.url) if response.url.startswith("/") else None
            pages.append((response.status_code, landed.content.decode() if landed else ""))
        finally:
            connection.close()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [status for status, _page in pages] == [302] * 10
    for _status, page in pages:
        assert not any(wording in page for wording in RAW_STRIPE_WORDING), page
    stripe_id = membership.customer.billing.billing_info.stripe_id
    assert len(stripe_client.v1.customers.list({"limit": 100}).data) == 1
    sessions = stripe_client.v1.checkout.sessions.list(
        {"customer": stripe_id, "status": "open", "limit": 100}
    ).data
    assert len([s for s in sessions if s.mode == "subscription"]) == 1
    [payable] = sessions
    follow(Client(), stripe_emulator.complete_checkout(payable.url))
