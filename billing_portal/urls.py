from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from billing import api as billing_api
from billing import views as billing_views
from licensing import views as licensing_views

from . import views
from .graphql.schema import schema
from .graphql.views import PortalGraphQLView
from .health import healthz

admin.site.site_header = "Billing Portal support"
admin.site.site_title = "Billing Portal support"

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("accounts.urls")),
    path("account/", include("accounts.account_urls")),
    path("billing/", include("billing.urls")),
    # The support console lives inside the admin (its login, its look), before its catch-all.
    path("admin/support/", include("support.urls")),
    path("admin/", admin.site.urls),
    # dj-stripe's webhook URL, answered by our receiver: verify, store, answer, process later.
    path("stripe/webhook/<uuid:uuid>/", billing_views.stripe_webhook, name="stripe_webhook"),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("healthz", healthz, name="healthz"),
    path("license/", licensing_views.license_page, name="license"),
    path("license/download/", licensing_views.license_download, name="license_download"),
    path(".well-known/jwks.json", licensing_views.jwks_view, name="jwks"),
    path("", include("licensing.api.urls")),
    path("api/graphql/", PortalGraphQLView.as_view(schema=schema), name="api_graphql"),
    # Billing's part of the customer reads (licensing's API cannot import billing).
    path(
        "api/v1/customers/<str:customer_id>/invoices",
        billing_api.CustomerInvoicesView.as_view(),
        name="api_customer_invoices",
    ),
]

if settings.BENCH_NOOP_VIEW:
    urlpatterns.append(path("bench/noop", views.bench_noop))
