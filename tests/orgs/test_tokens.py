"""API tokens: hashed, Bearer or Token, expiring, revocable, never more than the member's role."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from collector_server.orgs.models import ApiToken, Membership, Organization, hash_key
from tests.members import issue_token, member

HOSTS = "/api/v1/monitoring/hosts"


def _client(key: str, keyword: str = "Bearer") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {key}")
    return client


@pytest.fixture
def ann(db) -> User:
    return member(User.objects.create_user("ann"), "operator")


def test_bearer_and_token_keywords_both_work_and_the_key_is_stored_hashed(ann):
    key = issue_token(ann, "viewer")
    assert _client(key, "Bearer").get(HOSTS).status_code == 200
    assert _client(key, "Token").get(HOSTS).status_code == 200
    stored = ApiToken.all_objects.get(user=ann)
    assert stored.key_hash == hash_key(key) and key not in (stored.key_hash, stored.prefix)
    assert stored.last_used_at is not None


def test_expired_and_revoked_tokens_are_refused(ann):
    expired = issue_token(ann, "viewer", expires_at=timezone.now() - timedelta(seconds=1))
    response = _client(expired).get(HOSTS)
    assert response.status_code == 401 and "expired" in response.json()["error"]
    key = issue_token(ann, "viewer")
    ApiToken.all_objects.filter(key_hash=hash_key(key)).update(revoked_at=timezone.now())
    assert _client(key).get(HOSTS).status_code == 401
    assert _client("fw_not-a-key").get(HOSTS).status_code == 401


def test_a_token_never_exceeds_the_members_current_role(ann):
    key = issue_token(ann, "operator")
    silence = {"matchers": [{"name": "host", "op": "=", "value": "x"}], "ends_at": "2100-01-01T00:00:00Z"}
    assert _client(key).post("/api/v1/monitoring/silences", silence, format="json").status_code == 201
    Membership.all_objects.filter(user=ann).update(role="viewer")
    assert _client(key).post("/api/v1/monitoring/silences", silence, format="json").status_code == 403
    Membership.all_objects.filter(user=ann).delete()
    assert _client(key).get(HOSTS).status_code == 403  # a token of a former member reads nothing


def test_tokens_are_shown_once_and_revoked_through_the_api(db):
    boss = member(User.objects.create_user("boss"), "admin")
    admin = _client(issue_token(boss, "admin"))
    created = admin.post("/api/v1/tokens/", {"name": "grafana", "role": "viewer"}, format="json")
    assert created.status_code == 201
    key = created.json()["data"]["key"]
    assert _client(key).get(HOSTS).status_code == 200
    listed = admin.get("/api/v1/tokens/").json()["results"]
    assert all("key" not in row for row in listed) and key not in str(listed)
    assert admin.delete(f"/api/v1/tokens/{created.json()['data']['id']}/").status_code == 204
    assert _client(key).get(HOSTS).status_code == 401
    too_strong = admin.post(
        "/api/v1/tokens/", {"name": "x", "role": "admin", "user": "nobody"}, format="json"
    )
    assert too_strong.status_code == 400 and "user" in too_strong.json()["detail"]


def test_add_member_creates_organisation_user_and_prints_a_scoped_token(db):
    out = StringIO()
    call_command("add_member", "carol", "acme", "operator", stdout=out)
    lines = out.getvalue().splitlines()
    key = next(line.split("token: ", 1)[1] for line in lines if line.startswith("token: "))
    assert Organization.objects.filter(slug="acme").exists()
    assert Membership.all_objects.get(user__username="carol").role == "operator"
    token = ApiToken.all_objects.get(key_hash=hash_key(key))
    assert (token.organization.slug, token.role) == ("acme", "operator")
    assert _client(key).get(HOSTS).status_code == 200
    again = StringIO()
    call_command("add_member", "carol", "acme", "admin", stdout=again)
    assert Membership.all_objects.get(user__username="carol").role == "admin"
    assert "created" not in again.getvalue() and "token: " in again.getvalue()


def test_bootstrap_prints_a_token_only_when_it_creates_one(db):
    first = StringIO()
    call_command("bootstrap_admin", "--username", "root", "--password", "pw-root-12345", stdout=first)
    assert "api token: fw_" in first.getvalue()
    second = StringIO()
    call_command("bootstrap_admin", "--username", "root", stdout=second)
    assert "fw_" not in second.getvalue()
    assert ApiToken.all_objects.filter(user__username="root").count() == 1
