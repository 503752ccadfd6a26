"""dj-stripe's own admin pages, made fit for support staff: the mirror is Stripe's, so every
page is read-only, and none is listed on the admin index (they stay reachable by URL and
from links). Applied from billing/admin.py, after dj-stripe has
registered its ModelAdmins."""

from django.contrib import admin
from django.db.models import Model

from audit.admin import ReadOnlyAdminMixin

# None listed: what Stripe sent and whether it was processed is the portal's own Stripe
# events list (billing.StripeEvent), since the portal's receiver stores events itself.
LISTED_ON_INDEX: frozenset[str] = frozenset()
EMPTY = "—"


def _stripe_data_display(name: str):
    """A list column for one of dj-stripe's typed properties that survives the pinned API
    version: several read keys Stripe no longer sends (KeyError), shown as empty instead."""

    @admin.display(description=name.replace("_", " "))
    def display(obj: Model):
        try:
            return getattr(obj, name)
        except KeyError:
            return EMPTY

    return display


@admin.display(description="paid", boolean=True)
def _invoice_paid(invoice: Model) -> bool:
    # dj-stripe reads `invoice.paid`, which the pinned API version no longer has.
    return invoice.stripe_data.get("status") == "paid"


class MirrorAdminMixin(ReadOnlyAdminMixin):
    """Read-only, no bulk actions (dj-stripe's resync ones call Stripe from the page), and
    the model's stored fields instead of dj-stripe's typed properties on the change page."""

    listed_on_index = False

    def get_actions(self, request):
        return {}

    def get_urls(self):
        # dj-stripe's confirm-and-run view of those actions takes a POST of its own: gone too.
        return [url for url in super().get_urls() if url.name != "djstripe_custom_action"]

    def get_model_perms(self, request):
        if self.listed_on_index:
            return super().get_model_perms(request)
        return dict.fromkeys(("add", "change", "delete", "view"), False)

    def get_readonly_fields(self, request, obj=None):
        # dj-stripe lists every property of the model here; stripe_data holds what they read.
        return [
            name
            for name in super().get_readonly_fields(request, obj)
            if not _is_property(self.model, name)
        ]

    def get_list_display(self, request):
        columns = []
        for name in super().get_list_display(request):
            if self.model.__name__ == "Invoice" and name == "paid":
                columns.append(_invoice_paid)
            elif isinstance(name, str) and _is_property(self.model, name):
                columns.append(_stripe_data_display(name))
            else:
                columns.append(name)
        return columns

    def get_inlines(self, request, obj):
        return [_read_only(inline) for inline in super().get_inlines(request, obj)]


def _is_property(model: type[Model], name: str) -> bool:
    return isinstance(getattr(model, name, None), property)


def _read_only(inline: type[admin.options.InlineModelAdmin]) -> type:
    class ReadOnlyInline(ReadOnlyAdminMixin, inline):
        can_delete = False

        def get_readonly_fields(self, request, obj=None):
            return [
                name
                for name in super().get_readonly_fields(request, obj)
                if not _is_property(self.model, name)
            ]

    ReadOnlyInline.__name__ = inline.__name__
    return ReadOnlyInline


def djstripe_admin_read_only(site: admin.AdminSite) -> None:
    """Register each of dj-stripe's ModelAdmins again, through MirrorAdminMixin."""
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label != "djstripe":
            continue
        original = type(model_admin)
        if issubclass(original, MirrorAdminMixin):
            continue
        read_only = type(
            original.__name__,
            (MirrorAdminMixin, original),
            {
                "__module__": __name__,
                "listed_on_index": model._meta.model_name in LISTED_ON_INDEX,
            },
        )
        site.unregister(model)
        site.register(model, read_only)
