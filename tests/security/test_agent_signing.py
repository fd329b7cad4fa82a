"""The agent signs what it sends with its enrollment credential; where it reads the credential from."""

from __future__ import annotations

import pytest

from agent.config import ConfigError, load_config, save_credential
from agent.spool import Spool
from agent.transport import Transport
from shared.signing import KEY_FIELD, SIGNATURE_FIELD, Credential, parse_credential, signature
from shared.streams import PAYLOAD_FIELD

CREDENTIAL = Credential("0123456789abcdef", "s" * 43)
STREAM = "fwtest:stream:metrics"


def test_transport_signs_each_batch_when_sent_even_from_the_spool(private_redis, tmp_path):
    transport = Transport(
        private_redis.url,
        STREAM,
        Spool(tmp_path / "spool", 1_000_000),
        replay_budget=5.0,
        credential=CREDENTIAL,
    )
    transport.spool.append(b"spooled")  # written while Redis was away
    assert transport.send(b"fresh")
    entries = [fields for _, fields in private_redis.client().xrange(STREAM)]
    assert [e[PAYLOAD_FIELD] for e in entries] == [b"spooled", b"fresh"]
    for entry in entries:
        assert entry[KEY_FIELD] == b"0123456789abcdef"
        assert entry[SIGNATURE_FIELD] == signature(CREDENTIAL.secret, entry[PAYLOAD_FIELD])


def test_credential_comes_from_env_a_named_file_or_the_state_directory(tmp_path):
    state = tmp_path / "state"
    env = {"FLEETWATCH_AGENT_STATE_DIR": str(state)}
    assert load_config(env=env).credential is None
    save_credential(state, CREDENTIAL)
    assert load_config(env=env).credential == CREDENTIAL
    mounted = tmp_path / "secret"
    other = Credential("fedcba9876543210", "t" * 43)
    mounted.write_text(f"{other}\n")
    assert load_config(env=env | {"FLEETWATCH_AGENT_CREDENTIAL_FILE": str(mounted)}).credential == other
    assert load_config(env=env | {"FLEETWATCH_AGENT_CREDENTIAL": str(CREDENTIAL)}).credential == CREDENTIAL


def test_malformed_credential_stops_start_up_naming_the_setting(tmp_path):
    env = {"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path), "FLEETWATCH_AGENT_CREDENTIAL": "nonsense"}
    with pytest.raises(ConfigError, match="FLEETWATCH_AGENT_CREDENTIAL"):
        load_config(env=env)
    missing = {
        "FLEETWATCH_AGENT_STATE_DIR": str(tmp_path),
        "FLEETWATCH_AGENT_CREDENTIAL_FILE": "/nonexistent",
    }
    with pytest.raises(ConfigError, match="FLEETWATCH_AGENT_CREDENTIAL_FILE"):
        load_config(env=missing)


def test_wire_format_test_vector():
    """The example of docs/wire-format.md, byte for byte."""
    payload = bytes.fromhex(
        "87a17601a46b696e64a76d657472696373a56167656e7483a26964a26131a4686f7374a168a776657273696f6e"
        "a0a565706f636801a373657100a773656e745f6174cb3ff8000000000000a67365726965739184a46e616d65a2"
        "7570a474797065a56761756765a66c6162656c7380a6706f696e74739192cb3ff0000000000000cb3ff0000000"
        "000000"
    )
    credential = parse_credential("0123456789abcdef.dGVzdC1zZWNyZXQtZG8tbm90LXVzZS1hbnl3aGVyZQ")
    assert signature(credential.secret, payload) == VECTOR_SIGNATURE


VECTOR_SIGNATURE = b"2f6e9ba956078b0e08a8f9ceb3608b1be190cac1aba55f9eb5d1cee360735fb9"
