from django.urls import include, path

from . import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    # Django's login, logout, password change and password reset views, with our templates.
    path("", include("django.contrib.auth.urls")),
]
