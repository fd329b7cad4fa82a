"""fleetwatch-manage redis-agent-user: create or reset the agents' Redis user (XADD to the streams only).

Reads the agents' URL (user and password) from AGENT_REDIS_URL or --agent-url and runs ACL SETUSER
through REDIS_URL, whose user must be allowed to. Then checks with ACL DRYRUN that the user can do
nothing else. The Helm chart runs this as a post-install/post-upgrade Job.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

from django.core.management.base import BaseCommand, CommandError

from collector_server.redis_conn import get_stream_redis, stream_shards
from shared import redis_acl


class Command(BaseCommand):
    help = "Create or reset the agents' Redis user (from AGENT_REDIS_URL): XADD to the ingest streams only."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--agent-url", default=os.environ.get("AGENT_REDIS_URL", ""))

    def handle(self, *args, agent_url: str, **options) -> None:
        parsed = urlparse(agent_url)
        if not agent_url or not parsed.username or not parsed.password:
            raise CommandError("AGENT_REDIS_URL (or --agent-url) must name the agents' user and password")
        user, password = unquote(parsed.username), unquote(parsed.password)
        client = get_stream_redis()  # the agents write to the streams' Redis (every master of a cluster)
        shards = stream_shards()
        redis_acl.ensure_agent_user(client, user, password, shards=shards)
        found = redis_acl.check_agent_user(client, user, shards=shards)
        if found["problems"]:
            raise CommandError("; ".join(found["problems"]))
        keys = redis_acl.stream_keys(shards=shards)
        self.stdout.write(f"Redis user {user}: XADD to {', '.join(keys)}, nothing else")
