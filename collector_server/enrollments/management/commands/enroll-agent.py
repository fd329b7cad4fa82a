"""fleetwatch-manage enroll-agent HOST: enroll a host and print its credential (shown once)."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from collector_server.enrollments.models import Enrollment


class Command(BaseCommand):
    help = "Enroll a host: print the credential its agent signs batches with (shown only this once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "host_name", help="the host name every batch signed with this key is stored under"
        )
        parser.add_argument("--note", default="")
        parser.add_argument(
            "--group",
            action="store_true",
            help="one credential for many hosts (a Kubernetes DaemonSet): batches are stored as HOST/<node>",
        )
        parser.add_argument(
            "--credential-file",
            default="",
            help="write the credential to this file (mode 0600) instead of printing it, e.g. the agent's "
            "state directory's 'credential' file",
        )
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="with --credential-file: do nothing when that file already holds a credential (a start-up "
            "step run on every start, like the Compose stack's enroll-agent service)",
        )
        parser.add_argument("--quiet", action="store_true", help="print only the credential")
        parser.add_argument(
            "--organization",
            default="",
            help="slug of the organisation the host's data is stored in (default: DEFAULT_ORGANIZATION)",
        )

    def handle(
        self,
        *args,
        host_name: str,
        note: str,
        group: bool,
        credential_file: str,
        quiet: bool,
        organization: str = "",
        if_missing: bool = False,
        **options,
    ) -> None:
        from collector_server.orgs.models import Organization
        from collector_server.orgs.scope import default_organization_id

        host_name = host_name.strip()
        if not host_name:
            raise CommandError("host_name must not be empty")
        if if_missing:
            if not credential_file:
                raise CommandError("--if-missing needs --credential-file (the file it looks at)")
            existing = Path(credential_file)
            if existing.is_file() and existing.read_text(encoding="utf-8").strip():
                self.stdout.write(f"{existing} already holds a credential: not enrolling {host_name} again")
                return
        if organization:
            org_id = Organization.objects.filter(slug=organization).values_list("pk", flat=True).first()
            if org_id is None:
                raise CommandError(
                    f"no organisation {organization!r} (fleetwatch-manage add-member creates one)"
                )
        else:
            org_id = default_organization_id()
        enrollment, credential = Enrollment.enroll(host_name, note=note, group=group, organization_id=org_id)
        if credential_file:
            path = Path(credential_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"{credential}\n")
            self.stdout.write(
                f"enrolled {host_name} (key id {enrollment.key_id}); credential written to {path}"
            )
            return
        if quiet:
            self.stdout.write(str(credential))
            return
        self.stdout.write(f"enrolled {host_name} (key id {enrollment.key_id})")
        self.stdout.write(f"credential (shown only now): {credential}")
        self.stdout.write(f"on the host: fleetwatch-agent --save-credential {credential}")
        self.stdout.write(f"   or set:   FLEETWATCH_AGENT_CREDENTIAL={credential}")
