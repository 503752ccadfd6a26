"""The user manager: email is the login, and one address is one user in any letter case."""

from django.contrib.auth.base_user import BaseUserManager


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username: str):
        # Logins match the address in any letter case, as the unique constraint does.
        return self.get(email__iexact=username)

    def email_taken(self, email: str) -> bool:
        return self.filter(email__iexact=email.strip()).exists()

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        if not email:
            raise ValueError("Users need an email address.")
        user = self.model(email=self.normalize_email(email.strip()), **extra_fields)
        user.set_password(password)
        # The database enforces uniqueness (in any letter case); this checks the format.
        user.full_clean(exclude=["password"], validate_unique=False, validate_constraints=False)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        if not (extra_fields["is_staff"] and extra_fields["is_superuser"]):
            raise ValueError("A superuser needs is_staff and is_superuser.")
        return self.create_user(email, password, **extra_fields)
