"""`{% support_action "name" field=value … %}`: one action's form (its fields, a reason and
its button) on the support page; fields given here are sent hidden."""

from django import template
from django.forms import HiddenInput

from support.actions import ACTIONS

register = template.Library()


@register.inclusion_tag("admin/support/_action.html", takes_context=True)
def support_action(context, name: str, label: str = "", **values):
    action = ACTIONS[name]
    bound = context.get("forms", {}).get(name)
    form = bound if bound is not None and not values else action.form(initial=values)
    for field_name in values:
        form.fields[field_name].widget = HiddenInput()
    page = context["page"]
    return {
        "csrf_token": context.get("csrf_token"),
        "action": action,
        "name": name,
        "label": label or action.label,
        "form": form,
        "fields": [form[f] for f in form.fields if f != "reason"],
        "cards": page.cards if name == "invoice_retry" else None,
        "refusal": context["refusals"].get(name),
        "shown": context["can_act"] or action.permission == "support.support_view",
        "customer_id": page.customer.pk,
    }
