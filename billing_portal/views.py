"""Views that span apps: signup makes the account (accounts) and its trial license
(licensing), and the home page shows the plan, use and license (licensing) — which accounts
cannot do itself as it depends on nothing of ours."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters

from accounts.forms import SignupForm
from accounts.selectors import current_membership
from accounts.services import (
    EmailAlreadyRegistered,
    signup_attempt_report,
    signup_rate_limited,
)
from accounts.throttling import client_address
from licensing.models import License
from licensing.selectors import customer_feature_use, paid_plan
from licensing.services import customer_start


@login_required
def home(request):
    membership = current_membership(request)
    customer = membership.customer if membership else None
    context = {"membership": membership, "customer": customer}
    if customer is not None:
        context.update(
            paid_plan=paid_plan(customer),
            feature_use=customer_feature_use(customer=customer, now=timezone.now()),
            license=License.objects.filter(customer=customer, revoked_at__isnull=True).first(),
        )
    return render(request, "accounts/home.html", context)


@sensitive_post_parameters("password")
def signup(request):
    """A new address gets an account with its trial and a confirmation link; a registered
    one gets nothing but an email to its owner. Both see the same "check your inbox" page,
    and neither is signed in here (that would tell them apart): the link signs the new
    user in, and their password works meanwhile."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if signup_rate_limited(client_address=client_address(request)):
            return render(request, "accounts/signup_throttled.html", status=429)
        try:
            customer_start(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                company_name=form.cleaned_data["company_name"],
            )
        except EmailAlreadyRegistered:
            signup_attempt_report(email=form.cleaned_data["email"])
        return redirect("signup_done")
    return render(request, "accounts/signup.html", {"form": form})


def bench_noop(request):
    """Nothing but the middleware: what `make bench` compares check-access with (mounted
    only with BENCH_NOOP_VIEW)."""
    return HttpResponse(b"{}", content_type="application/json")
