"""Every endpoint answers what /api/schema/ says: schemathesis' response and status-code conformance.

Each operation of the schema becomes one test; Hypothesis generates a few requests for it
(bounded examples, no deadline) and every response must have a declared status code and a
body valid against that code's schema. The no-5xx property is checked by its own test module.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

MAX_EXAMPLES = 1
# Calls out to the URL in a channel's config: not a property of fleetwatch's schema.
EXCLUDED = "/api/v1/monitoring/channels/{id}/test"

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application()).exclude(path=EXCLUDED)


@pytest.fixture
def keep_connection():
    """Serve in-process inside the test's transaction: the handler must not close the connection
    at the end of each request (what Django's test client arranges the same way)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(db) -> str:
    from django.contrib.auth.models import User

    from tests.members import issue_token, member

    user = User.objects.create_user("schema-bot", password="pw-schema-bot-1")
    return issue_token(member(user, "admin"), "admin")


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_responses_conform_to_the_schema(case, token, keep_connection, redis_client):
    response = case.call(headers={"Authorization": f"Token {token}"})
    case.validate_response(response, checks=[response_schema_conformance, status_code_conformance])
