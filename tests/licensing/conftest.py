import pytest

from licensing.api.authentication import service_key_create
from licensing.catalog import catalog_read
from licensing.services import catalog_load


@pytest.fixture
def catalog(db):
    catalog_load(catalog=catalog_read())


@pytest.fixture
def service_key(db) -> str:
    _record, key = service_key_create(name="tests")
    return key


@pytest.fixture
def api(client, service_key):
    """A Django test client calling the API as a service."""
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {service_key}"
    return client
