import dataclasses

import pytest
from django.core.exceptions import ImproperlyConfigured

from licensing.catalog import catalog_read
from licensing.models import Feature, Plan, PlanFeature
from licensing.services import catalog_load


def write(tmp_path, text: str):
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


def test_the_committed_catalog_reads():
    catalog = catalog_read()
    assert [plan.code for plan in catalog.plans] == ["trial", "starter", "pro", "business"]
    assert not catalog.plan("trial").is_sold
    pro = catalog.plan("pro")
    assert (pro.amount, pro.currency, pro.lookup_key, pro.product_id) == (
        4900,
        "eur",
        "pro_monthly",
        "plan_pro",
    )
    api_calls = next(f for f in pro.features if f.feature == "api_calls")
    assert (api_calls.limit, api_calls.reset) == (1_000_000, "monthly")
    assert api_calls.soft_limit == 80_000
    assert (api_calls.included, api_calls.unit_amount, api_calls.per) == (100_000, 200, 10_000)
    projects = next(f for f in catalog.plan("starter").features if f.feature == "projects")
    assert (projects.included, projects.unit_amount, projects.per) == (3, 500, 1)
    assert next(f for f in catalog.features if f.key == "projects").held


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[features.x]\nname = "X"\nkind = "gauge"\n', "kind"),
        ('[plans.p]\nname = "P"\n[plans.p.features]\nnope = {}\n', "unknown feature 'nope'"),
        (
            '[features.sso]\nname = "SSO"\nkind = "boolean"\n'
            '[plans.p]\nname = "P"\n[plans.p.features]\nsso = { limit = 3 }\n',
            "takes no limits",
        ),
        ('[plans.p]\nname = "P"\namount = 100\n', "no currency or lookup_key"),
        (
            '[features.x]\nname = "X"\nkind = "metered"\n'
            '[plans.p]\nname = "P"\n[plans.p.features]\nx = { reset = "weekly" }\n',
            "monthly or never",
        ),
        ('[plans.p]\nname = "P"\nprice = 100\n', "unknown keys"),
    ],
)
def test_mistakes_in_the_catalog_are_named(tmp_path, text, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        catalog_read(write(tmp_path, text))


METERED = '[features.x]\nname = "X"\nkind = "metered"\n'
HELD = '[features.h]\nname = "H"\nkind = "metered"\nheld = true\n'
SOLD = '[plans.p]\nname = "P"\namount = 100\ncurrency = "eur"\nlookup_key = "p"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (METERED + '[plans.t]\nname = "T"\n[plans.t.features]\nx = { unit_amount = 5 }\n',
         "not sold"),
        (METERED + SOLD + "[plans.p.features]\nx = { included = 5 }\n", "need a `unit_amount`"),
        (METERED + SOLD + "[plans.p.features]\nx = { unit_amount = -1 }\n", "at least 0"),
        (METERED + SOLD + "[plans.p.features]\nx = { unit_amount = 1, per = 0 }\n",
         "at least 1"),
        (METERED + SOLD + '[plans.p.features]\nx = { unit_amount = "2.00" }\n', "whole number"),
        (HELD + SOLD + '[plans.p.features]\nh = { reset = "monthly" }\n', "reset = never"),
        (HELD + SOLD + "[plans.p.features]\nh = { unit_amount = 1, per = 10 }\n", "per unit"),
        ('[features.b]\nname = "B"\nkind = "boolean"\nheld = true\n', "only a metered"),
    ],
)  # fmt: skip
def test_mistakes_in_prices_are_named(tmp_path, text, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        catalog_read(write(tmp_path, text))


def test_loading_matches_the_file_and_keeps_what_left_it_inactive(db):
    catalog = catalog_read()
    catalog_load(catalog=catalog)
    assert Plan.objects.filter(is_active=True).count() == 4
    assert PlanFeature.objects.get(plan__code="business", feature__key="priority_support")
    assert Feature.objects.get(key="sso").kind == Feature.Kind.BOOLEAN

    smaller = dataclasses.replace(
        catalog, plans=tuple(p for p in catalog.plans if p.code != "business")
    )
    catalog_load(catalog=smaller)
    catalog_load(catalog=smaller)

    business = Plan.objects.get(code="business")
    assert not business.is_active
    assert Plan.objects.filter(is_active=True).count() == 3
    assert PlanFeature.objects.filter(plan__code="pro").count() == 3
