from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views

from .health import healthz

admin.site.site_header = "Billing Portal support"
admin.site.site_title = "Billing Portal support"

urlpatterns = [
    path("", account_views.home, name="home"),
    path("accounts/", include("accounts.urls")),
    path("billing/", include("billing.urls")),
    path("admin/", admin.site.urls),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("healthz", healthz, name="healthz"),
]
