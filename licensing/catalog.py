"""Reading catalog.toml, the one committed declaration of plans and features."""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

CATALOG_PATH = Path(__file__).with_name("catalog.toml")
FEATURE_KINDS = {"boolean", "metered"}
RESETS = {"monthly", "never"}


@dataclass(frozen=True)
class FeatureSpec:
    key: str
    name: str
    kind: str
    unit: str = ""
    held: bool = False


@dataclass(frozen=True)
class PlanFeatureSpec:
    feature: str
    limit: int | None = None
    reset: str = "never"
    soft_limit: int | None = None
    included: int = 0
    unit_amount: int | None = None
    per: int = 1

    @property
    def is_billed(self) -> bool:
        return self.unit_amount is not None


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    amount: int | None = None
    currency: str = ""
    lookup_key: str = ""
    trial_allowed: bool = False
    features: tuple[PlanFeatureSpec, ...] = field(default_factory=tuple)

    @property
    def is_sold(self) -> bool:
        return self.amount is not None

    @property
    def product_id(self) -> str:
        """The Stripe product's id: ours, so the push finds it again."""
        return f"plan_{self.code}"


@dataclass(frozen=True)
class Catalog:
    features: tuple[FeatureSpec, ...]
    plans: tuple[PlanSpec, ...]

    def plan(self, code: str) -> PlanSpec:
        return next(plan for plan in self.plans if plan.code == code)


def _fail(message: str) -> None:
    raise ImproperlyConfigured(f"catalog.toml: {message}")


PRICE_KEYS = {"included", "unit_amount", "per"}


def _check_price(code: str, key: str, plan: dict, feature: FeatureSpec, limits: dict) -> None:
    if feature.held and limits.get("reset", "never") != "never":
        _fail(f"plan {code!r} feature {key!r}: what is held counts forever (reset = never)")
    if not PRICE_KEYS & set(limits):
        return
    if "amount" not in plan:
        _fail(f"plan {code!r} is not sold, so {key!r} cannot carry a price")
    if "unit_amount" not in limits:
        _fail(f"plan {code!r} feature {key!r}: `included` and `per` need a `unit_amount`")
    for name in PRICE_KEYS & set(limits):
        value, least = limits[name], 1 if name == "per" else 0
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            _fail(f"plan {code!r} feature {key!r}: {name} is a whole number, at least {least}")
    if feature.held and limits.get("per", 1) != 1:
        _fail(f"plan {code!r} feature {key!r}: a held resource is priced per unit (no `per`)")


def catalog_read(path: Path = CATALOG_PATH) -> Catalog:
    """The catalog, checked: unknown keys, kinds, resets and features are errors."""
    with path.open("rb") as file:
        raw = tomllib.load(file)
    features = []
    for key, spec in raw.get("features", {}).items():
        if set(spec) - {"name", "kind", "unit", "held"} or spec.get("kind") not in FEATURE_KINDS:
            _fail(f"feature {key!r} needs a name and a kind ({', '.join(sorted(FEATURE_KINDS))})")
        if spec.get("held") and spec["kind"] != "metered":
            _fail(f"feature {key!r}: only a metered feature can be held")
        features.append(FeatureSpec(key=key, **spec))
    known = {feature.key: feature for feature in features}

    plans = []
    for code, spec in raw.get("plans", {}).items():
        extra = set(spec) - {"name", "amount", "currency", "lookup_key", "trial_allowed",
                             "features"}  # fmt: skip
        if extra:
            _fail(f"plan {code!r} has unknown keys {sorted(extra)}")
        if "amount" in spec and not (spec.get("currency") and spec.get("lookup_key")):
            _fail(f"plan {code!r} has an amount but no currency or lookup_key")
        plan_features = []
        for key, limits in spec.get("features", {}).items():
            if key not in known:
                _fail(f"plan {code!r} names unknown feature {key!r}")
            if set(limits) - {"limit", "reset", "soft_limit", *PRICE_KEYS}:
                _fail(f"plan {code!r} feature {key!r} has unknown keys")
            _check_price(code, key, spec, known[key], limits)
            if limits.get("reset", "never") not in RESETS:
                _fail(f"plan {code!r} feature {key!r}: reset is monthly or never")
            if known[key].kind == "boolean" and limits:
                _fail(f"plan {code!r}: {key!r} is on or off and takes no limits")
            plan_features.append(PlanFeatureSpec(feature=key, **limits))
        plans.append(
            PlanSpec(code=code, **{k: v for k, v in spec.items() if k != "features"},
                     features=tuple(plan_features))
        )  # fmt: skip
    return Catalog(features=tuple(features), plans=tuple(plans))
