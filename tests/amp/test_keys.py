"""AgentKey: stable kid, public export without private material, 0600 key files."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest

from amp_tools.amp.keys import AgentKey, public_jwk_equal, public_key_from_jwk
from amp_tools.amp.secret import Secret
from amp_tools.errors import ConfigError


def test_kid_is_rfc7638_thumbprint_unless_given() -> None:
    key = AgentKey.generate()
    assert key.kid == key.thumbprint()
    assert len(key.kid) == 43  # base64url SHA-256
    named = AgentKey.generate("agent-key-1")
    assert named.kid == "agent-key-1"
    assert named.public_jwk()["kid"] == "agent-key-1"


def test_public_jwk_has_no_private_part_and_is_stable() -> None:
    key = AgentKey.generate()
    pub = key.public_jwk()
    assert sorted(pub) == ["crv", "kid", "kty", "x", "y"]
    assert pub["kty"] == "EC" and pub["crv"] == "P-256"
    assert key.public_jwk() == pub
    again = AgentKey.from_jwk(json.loads(json.dumps({**pub, "d": _private_d(key)})))
    assert again.kid == key.kid and again.public_jwk() == pub


def _private_d(key: AgentKey) -> str:
    return str(key._jwk.export(private_key=True, as_dict=True)["d"])


def test_repr_never_shows_private_material() -> None:
    key = AgentKey.generate("k1")
    d = _private_d(key)
    assert d not in repr(key) and d not in str(key)
    assert repr(key) == "AgentKey(kid='k1', ES256)"
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_save_creates_0600_file_and_round_trips(tmp_path: Path) -> None:
    key = AgentKey.generate()
    path = tmp_path / "sub" / "agent.jwk"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["agent.jwk"]  # no temp file left behind
    loaded = AgentKey.load(path)
    assert loaded.public_jwk() == key.public_jwk()
    assert loaded.kid == key.kid


def test_load_refuses_group_or_world_readable_file(tmp_path: Path) -> None:
    key = AgentKey.generate()
    path = tmp_path / "agent.jwk"
    key.save(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match=r"accessible by group or others \(mode 0644\).*chmod 600"):
        AgentKey.load(path)
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="0640"):
        AgentKey.load(path)


def test_load_or_create_creates_once(tmp_path: Path) -> None:
    path = tmp_path / "agent.jwk"
    first = AgentKey.load_or_create(path, kid="agent-x")
    second = AgentKey.load_or_create(path)
    assert first.public_jwk() == second.public_jwk()
    assert second.kid == "agent-x"


def test_from_jwk_refuses_public_only_and_wrong_curve() -> None:
    pub = AgentKey.generate().public_jwk()
    with pytest.raises(ConfigError, match="no 'd'"):
        AgentKey.from_jwk(pub)
    with pytest.raises(ConfigError, match="P-256"):
        AgentKey.from_jwk({**pub, "crv": "P-384", "d": "x"})
    with pytest.raises(ConfigError, match="does not exist"):
        AgentKey.load("/nonexistent/agent.jwk")


def test_public_key_from_jwk_refuses_private_material() -> None:
    key = AgentKey.generate()
    with pytest.raises(ConfigError, match="private 'd'"):
        public_key_from_jwk({**key.public_jwk(), "d": _private_d(key)})
    assert public_jwk_equal(key.public_jwk(), dict(key.public_jwk()))
    assert not public_jwk_equal(key.public_jwk(), {**key.public_jwk(), "kid": "other"})


def test_secret_redaction_and_equality() -> None:
    l1 = "eyJhbGciOiJFUzI1NiIs" + "A" * 508
    s = Secret(l1)
    assert repr(s) == "Secret('eyJhbGci…', 528 chars)"
    assert str(s) == repr(s) and f"{s}" == repr(s)
    assert l1 not in repr([s]) and l1 not in f"{s!s}"
    assert s == Secret(l1) and s != Secret(l1 + "x")
    assert s.reveal() == l1
    assert repr(Secret("abcd")) == "Secret('a…', 4 chars)"
    with pytest.raises(TypeError):
        json.dumps({"l1": s})
    with pytest.raises(AttributeError):
        s._value = "x"
