"""Enrolling hosts: API (admin users only), admin actions, the manage command; the credential is shown once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from collector_server.enrollments.models import Enrollment
from shared.signing import parse_credential
from tests.members import member

URL = "/api/v1/monitoring/enrollments"
pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("root", password="x"))
    return client


@pytest.fixture
def operator_api() -> APIClient:
    client = APIClient()
    # An operator of the organisation: enrollments need its admin role.
    client.force_authenticate(
        member(get_user_model().objects.create_user("operator", password="x"), "operator")
    )
    return client


def test_enrolling_returns_the_credential_once_and_never_again(admin_api):
    created = admin_api.post(URL, {"host_name": "web-1"}, format="json")
    assert created.status_code == 201
    credential = parse_credential(created.json()["credential"])
    assert credential.key_id == created.json()["key_id"]
    listed = admin_api.get(URL).json()
    assert credential.secret not in str(listed)
    one = admin_api.get(f"{URL}/{created.json()['id']}").json()
    assert "credential" not in one and one["host_name"] == "web-1" and one["revoked"] is False


def test_rotate_gives_a_new_secret_under_the_same_key_and_revoke_is_final(admin_api):
    enrollment, old = Enrollment.enroll("web-1")
    rotated = admin_api.post(f"{URL}/{enrollment.pk}/rotate", {"grace_seconds": 600}, format="json")
    assert rotated.status_code == 200
    new = parse_credential(rotated.json()["credential"])
    assert new.key_id == old.key_id and new.secret != old.secret
    assert [s for s, _ in Enrollment.objects.get().valid_secrets()] == [new.secret, old.secret]
    revoked = admin_api.post(f"{URL}/{enrollment.pk}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    again = admin_api.post(f"{URL}/{enrollment.pk}/rotate", {}, format="json")
    assert again.status_code == 409


def test_bad_input_is_a_400_naming_the_field(admin_api):
    missing = admin_api.post(URL, {}, format="json")
    assert missing.status_code == 400 and missing.json()["error"].startswith("host_name:")
    enrollment, _ = Enrollment.enroll("web-1")
    response = admin_api.post(f"{URL}/{enrollment.pk}/rotate", {"grace_seconds": -1}, format="json")
    assert response.status_code == 400 and response.json()["error"].startswith("grace_seconds:")


def test_only_admin_users_may_see_or_enroll(operator_api):
    Enrollment.enroll("web-1")
    assert operator_api.get(URL).status_code == 403
    assert operator_api.post(URL, {"host_name": "evil"}, format="json").status_code == 403
    assert APIClient().get(URL).status_code in (401, 403)
    assert Enrollment.objects.count() == 1


def test_enroll_agent_command_prints_the_credential_or_writes_it_private(tmp_path):
    out = StringIO()
    call_command("enroll-agent", "web-1", "--quiet", stdout=out)
    credential = parse_credential(out.getvalue())
    assert Enrollment.objects.get(key_id=credential.key_id).host_name == "web-1"
    path = tmp_path / "state" / "credential"
    call_command("enroll-agent", "k8s-prod", "--group", "--credential-file", str(path), stdout=StringIO())
    assert path.stat().st_mode & 0o077 == 0
    assert Enrollment.objects.get(key_id=parse_credential(path.read_text()).key_id).group is True


def test_admin_enrolls_shows_the_credential_once_and_revokes(client):
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    response = client.post(
        "/admin/enrollments/enrollment/add/", {"host_name": "web-1", "note": ""}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    enrollment = Enrollment.objects.get()
    assert any(f"{enrollment.key_id}." in m for m in shown)
    client.post(
        "/admin/enrollments/enrollment/",
        {"action": "revoke", "_selected_action": [enrollment.pk]},
    )
    assert Enrollment.objects.get().revoked
