"""GET /api/v1/customers/{customer_id}/invoices: a customer's invoices (the current one
first, while open) with their lines, from our database only, scoped like the other
customer reads (licensing.api.reads)."""

from django.db.models import Prefetch, Sum
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.pagination import CursorPagination

from licensing.api.reads import NOT_FOUND, CustomerReadView
from licensing.api.views import ERRORS

from .models import Invoice, InvoiceLine

MAX_PAGE = 100


class InvoiceLineOut(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = [
            "key", "kind", "description", "quantity", "unit_amount", "per", "amount",
            "period_start", "period_end",
        ]  # fmt: skip


class InvoiceOut(serializers.ModelSerializer):
    lines_total = serializers.IntegerField(help_text="Our ledger's sum of the lines.")
    lines = InvoiceLineOut(many=True)

    class Meta:
        model = Invoice
        fields = [
            "id", "status", "currency", "period_start", "period_end", "number", "total",
            "lines_total", "hosted_invoice_url", "invoice_pdf", "finalized_at", "lines",
        ]  # fmt: skip


class InvoicePages(CursorPagination):
    ordering = ("-period_start", "-id")
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE


def invoices_for_read(customer_id: str):
    """A customer's invoices, newest cycle first, with their lines and lines' total: two
    queries per page whatever its size."""
    return (
        Invoice.objects.filter(customer_id=customer_id)
        .annotate(lines_total=Sum("lines__amount", default=0))
        .prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.order_by("id")))
    )


class CustomerInvoicesView(CustomerReadView, generics.ListAPIView):
    serializer_class = InvoiceOut
    pagination_class = InvoicePages

    def get_queryset(self):
        customer_id = self.kwargs["customer_id"]
        if self.customer(customer_id) is None:
            raise exceptions.NotFound(f"No customer {customer_id}.", code="customer_not_found")
        return invoices_for_read(customer_id)

    @extend_schema(
        summary="The customer's invoices with their lines, newest first (cursor pages)",
        responses={200: InvoiceOut(many=True), 404: NOT_FOUND, 401: ERRORS[401]},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
