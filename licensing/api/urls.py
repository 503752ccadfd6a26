from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from . import reads, resources, views

urlpatterns = [
    path("api/v1/check-access", views.CheckAccessView.as_view(), name="api_check_access"),
    path("api/v1/usage", views.UsageView.as_view(), name="api_usage"),
    path("api/v1/resources/attach", resources.ResourceAttachView.as_view(), name="api_attach"),
    path("api/v1/resources/detach", resources.ResourceDetachView.as_view(), name="api_detach"),
    path("api/v1/me/", views.MeView.as_view(), name="api_me"),
    path("api/v1/me/session", views.MeSessionView.as_view(), name="api_me_session"),
    path("api/v1/licenses/revoked", views.RevokedLicensesView.as_view(), name="api_revoked"),
    path("api/v1/customers/<str:customer_id>", reads.CustomerView.as_view(), name="api_customer"),
    path(
        "api/v1/customers/<str:customer_id>/entitlements",
        reads.CustomerEntitlementsView.as_view(),
        name="api_customer_entitlements",
    ),
    path(
        "api/v1/customers/<str:customer_id>/usage",
        reads.CustomerUsageView.as_view(),
        name="api_customer_usage",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api_schema"), name="api_docs"),
]
