"""With no STRIPE_SECRET_KEY billing is off: pages say so, actions answer 501."""

from django.http import HttpResponse
from django.urls import include, path, reverse

from billing.views import billing_required


@billing_required
def an_action(request):
    return HttpResponse("done")


urlpatterns = [
    path("billing-action/", an_action),
    path("", include("billing_portal.urls")),
]


def test_billing_page_says_billing_is_not_enabled(signed_in_client, settings):
    assert settings.STRIPE_SECRET_KEY == ""
    response = signed_in_client.get(reverse("billing:overview"))
    assert response.status_code == 200
    assert "Billing is not enabled on this portal" in response.content.decode()


def test_billing_actions_answer_501_when_disabled(signed_in_client, settings):
    settings.ROOT_URLCONF = __name__
    response = signed_in_client.post("/billing-action/")
    assert response.status_code == 501
    assert "Billing is not enabled on this portal" in response.content.decode()


def test_billing_actions_run_when_enabled(signed_in_client, settings):
    settings.ROOT_URLCONF = __name__
    settings.BILLING_ENABLED = True
    response = signed_in_client.post("/billing-action/")
    assert response.status_code == 200


def test_everything_else_works_without_billing(signed_in_client, membership):
    response = signed_in_client.get(reverse("home"))
    assert response.status_code == 200
    assert membership.customer.customer_id in response.content.decode()
