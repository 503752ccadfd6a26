from django.urls import include, path

from . import views

urlpatterns = [
    path("signup/done/", views.signup_done, name="signup_done"),
    path("verify/<str:token>/", views.email_verify, name="email_verify"),
    path("verify-resend/", views.email_verification_resend, name="email_verification_resend"),
    # Before Django's own, which it replaces: this one is throttled and sends through Celery.
    path("password_reset/", views.password_reset, name="password_reset"),
    # Django's, and setting the password also confirms the address.
    path(
        "reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    # Django's login, logout, password change and the rest of password reset, with our
    # templates.
    path("", include("django.contrib.auth.urls")),
]
