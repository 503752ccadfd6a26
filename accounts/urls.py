from django.urls import include, path

urlpatterns = [
    # Django's login, logout, password change and password reset views, with our templates.
    path("", include("django.contrib.auth.urls")),
]
