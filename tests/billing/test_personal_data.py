"""After a whole billing journey, a dump of every table (ours, dj-stripe's mirror and its
webhook log) holds none of the billing details the customer entered."""

from django.db import connection
from django.urls import reverse

from tests.billing.test_billing_details import save as save_details
from tests.billing.test_cards import add_card

ENTERED = {
    "name": "Grace Hopper Consulting",
    "email": "ledger@hopper.example",
    "phone": "+44 20 7946 0958",
    "line1": "31 Cobol Crescent",
    "city": "Arlington",
}


def database_dump() -> str:
    """Every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.append(f"{table}: {cursor.fetchall()!r}")
    return "\n".join(chunks)


def test_a_dump_holds_no_billing_details(
    signed_in_client, membership, other_membership, stripe_emulator, stripe_client
):
    first = add_card(signed_in_client, stripe_emulator)
    assert save_details(signed_in_client, **ENTERED).status_code == 302
    save_details(signed_in_client, **ENTERED, line2="Suite 9")
    second = add_card(signed_in_client, stripe_emulator, "pm_card_mastercard")
    signed_in_client.post(reverse("billing:payment_method_make_primary", args=[second]))
    signed_in_client.post(
        reverse("billing:payment_method_remove", args=[first]), {"confirm": "yes"}
    )
    stripe_emulator.deliver()

    # The details are at Stripe, and the mirror and webhook log did see the journey.
    stripe_id = membership.customer.billing.billing_info.stripe_id
    assert stripe_client.v1.customers.retrieve(stripe_id).phone == ENTERED["phone"]
    dump = database_dump()
    assert "customer.updated" in dump
    assert stripe_id in dump
    assert "4242" in dump  # last 4 may stay

    for field, value in ENTERED.items():
        assert value not in dump, f"the {field} entered is in the database"
    assert "Suite 9" not in dump


def test_the_dump_helper_finds_what_is_there(membership):
    assert membership.customer.customer_id in database_dump()
