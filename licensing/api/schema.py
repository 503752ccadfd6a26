"""How the OpenAPI schema describes our two bearer schemes. drf-spectacular registers
these extensions when this module is imported (licensing.api.views does)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ServiceKeyScheme(OpenApiAuthenticationExtension):
    target_class = "licensing.api.authentication.ServiceKeyAuthentication"
    name = "serviceKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A service API key (bp_…) from `manage.py service_key_create`.",
        }


class IdentityTokenScheme(OpenApiAuthenticationExtension):
    target_class = "licensing.api.authentication.IdentityTokenAuthentication"
    name = "identityToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A token from the identity provider (OIDC_ISSUER) with an email.",
        }


class ServiceKeyOrIdentityTokenScheme(OpenApiAuthenticationExtension):
    target_class = "licensing.api.authentication.ServiceKeyOrIdentityTokenAuthentication"
    name = "serviceKeyOrIdentityToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A service API key (bp_…: every customer) or an identity token "
            "(only the accounts its user belongs to).",
        }
