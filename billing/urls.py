from django.urls import path

from . import views

app_name = "billing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("details/", views.billing_details, name="details"),
    path("profile/", views.billing_profile, name="profile"),
    path("profile/share/", views.billing_profile_share, name="profile_share"),
    path("profile/detach/", views.billing_profile_detach, name="profile_detach"),
    path("usage/", views.usage, name="usage"),
    path("usage/caps/<int:cap_id>/remove/", views.spend_cap_remove, name="spend_cap_remove"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="invoice_detail"),
    path("plans/", views.plans, name="plans"),
    path("plans/activated/", views.plan_activated, name="plan_activated"),
    path("plans/<slug:code>/upgrade/", views.plan_upgrade, name="plan_upgrade"),
    path("plans/<slug:code>/change/", views.plan_change, name="plan_change"),
    path("plan/cancel/", views.plan_cancel_at_period_end, {"cancel": True}, name="plan_cancel"),
    path("plan/resume/", views.plan_cancel_at_period_end, {"cancel": False}, name="plan_resume"),
    path("payment-methods/", views.payment_methods, name="payment_methods"),
    path("payment-methods/add/", views.payment_method_add, name="payment_method_add"),
    path("payment-methods/added/", views.payment_method_added, name="payment_method_added"),
    path(
        "payment-methods/cancelled/",
        views.payment_method_cancelled,
        name="payment_method_cancelled",
    ),
    path(
        "payment-methods/<str:stripe_id>/move-up/",
        views.payment_method_move,
        {"offset": -1},
        name="payment_method_move_up",
    ),
    path(
        "payment-methods/<str:stripe_id>/move-down/",
        views.payment_method_move,
        {"offset": 1},
        name="payment_method_move_down",
    ),
    path(
        "payment-methods/<str:stripe_id>/make-primary/",
        views.payment_method_make_primary,
        name="payment_method_make_primary",
    ),
    path(
        "payment-methods/<str:stripe_id>/remove/",
        views.payment_method_remove,
        name="payment_method_remove",
    ),
]
