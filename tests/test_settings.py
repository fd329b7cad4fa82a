import pytest

from shared.config import ConfigError, envbool, envint, envsecret, parse_database_url


def test_bad_integer_setting_names_the_variable():
    with pytest.raises(ConfigError, match="RAW_RETENTION_DAYS='seven' is not an integer"):
        envint("RAW_RETENTION_DAYS", 7, env={"RAW_RETENTION_DAYS": "seven"})


def test_out_of_range_setting_is_refused():
    with pytest.raises(ConfigError, match="below the minimum"):
        envint("INGEST_CHUNK", 500, env={"INGEST_CHUNK": "0"}, minimum=1)


def test_bad_boolean_setting_names_the_variable():
    with pytest.raises(ConfigError, match="DEBUG='maybe'"):
        envbool("DEBUG", env={"DEBUG": "maybe"})


def test_secret_is_read_from_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    assert envsecret("SMTP_PASSWORD", env={"SMTP_PASSWORD_FILE": str(secret)}) == "s3cret"


def test_database_url_is_parsed():
    db = parse_database_url("postgres://u:p%40ss@db.example:6543/metrics?sslmode=require")
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "u",
        "p@ss",
        "db.example",
        "6543",
        "metrics",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_database_url_without_name_is_refused():
    with pytest.raises(ConfigError, match="names no database"):
        parse_database_url("postgres://u@host:5432/")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STREAM_SHARDS": "0"}, "STREAM_SHARDS"),
        ({"STREAM_SHARDS": "lots"}, "STREAM_SHARDS"),
        ({"STREAM_REDIS_CLUSTER": "true"}, "STREAM_REDIS_CLUSTER"),
        (
            {"STREAM_REDIS_CLUSTER": "true", "STREAM_REDIS_URL": "redis://127.0.0.1:21700/3"},
            "STREAM_REDIS_URL",
        ),
        ({"DATABASE_REPLICA_URL": "mysql://replica/fleetwatch"}, "DATABASE_REPLICA_URL"),
        ({"HEALTH_MAX_REPLICA_LAG_SECONDS": "soon"}, "HEALTH_MAX_REPLICA_LAG_SECONDS"),
    ],
)
def test_bad_scale_out_settings_stop_start_up_naming_the_setting(env, named):
    import os
    import subprocess
    import sys

    child = {k: v for k, v in os.environ.items() if not k.startswith(("STREAM_", "DATABASE_REPLICA"))}
    child.update(env, DJANGO_SETTINGS_MODULE="collector_server.settings", SECRET_KEY="x", ALLOWED_HOSTS="*")
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=child,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and named in result.stderr.splitlines()[-1]
