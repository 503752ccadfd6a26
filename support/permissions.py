"""Who may use the support console: the `Support` group views and acts, `Support (read
only)` views, superusers do both. Nobody acts on a staff member's own account."""

from django.contrib.auth.base_user import AbstractBaseUser

SUPPORT_GROUP = "Support"
READ_ONLY_GROUP = "Support (read only)"
VIEW = "support.support_view"
ACT = "support.support_act"
GROUP_PERMISSIONS = {
    SUPPORT_GROUP: ["support_view", "support_act"],
    READ_ONLY_GROUP: ["support_view"],
}


def can_view(user: AbstractBaseUser) -> bool:
    return user.is_active and user.is_staff and user.has_perm(VIEW)


def can_act(user: AbstractBaseUser) -> bool:
    return can_view(user) and user.has_perm(ACT)


# Both groups may look at these apps' admin pages (Django's view permission), never change.
VIEWED_APPS = ["accounts", "audit", "billing", "licensing", "support", "djstripe"]


def support_groups_ensure(**kwargs) -> None:
    """After migrate: the two groups exist with their permissions (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    viewing = Permission.objects.filter(
        content_type__app_label__in=VIEWED_APPS, codename__startswith="view_"
    )
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        own = Permission.objects.filter(content_type__app_label="support", codename__in=codenames)
        group.permissions.add(*own, *viewing)
