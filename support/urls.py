from django.urls import path, register_converter

from . import views


class CustomerIdConverter:
    """Only our ids (cust_…): the admin's own pages of this app (/admin/support/erasure/)
    live under the same prefix."""

    regex = r"cust_[0-9A-Za-z_]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(CustomerIdConverter, "customer_id")

app_name = "support"

urlpatterns = [
    path("", views.search, name="search"),
    path("<customer_id:customer_id>/", views.customer, name="customer"),
    path("<customer_id:customer_id>/actions/<slug:name>/", views.action, name="action"),
]
