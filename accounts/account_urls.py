"""The signed-in person's account pages under /account/: members, invitations, switching."""

from django.urls import path

from . import views

urlpatterns = [
    path("members/", views.members_page, name="members"),
    path("members/<int:membership_id>/role/", views.member_role_change, name="member_role"),
    path("members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("switch/", views.account_switch, name="account_switch"),
]
