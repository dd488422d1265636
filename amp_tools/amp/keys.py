"""ES256 (P-256) signing keys: the agent key, and the issuer keys the sandbox plays with.

`AgentKey` wraps a jwcrypto JWK. Its public half is exportable as a JWK with a stable `kid`
(the RFC 7638 thumbprint unless one was given) so an operator can register it with a network.
The private half never appears in `repr`, logs or `public_jwk()`; on disk it lives in a
0600 file written atomically, and a file readable by group or others is refused. It is
created once, under an exclusive lock, and never replaced (`load_or_create`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jwcrypto import jwk, jws

from amp_tools.errors import ConfigError
from amp_tools.private import private_dir

__all__ = ["AgentKey", "public_jwk_equal", "public_key_from_jwk"]


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `lock_path` across processes (POSIX flock; elsewhere the
    create-new link in `load_or_create` alone keeps the first key)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)

_PUBLIC_FIELDS = ("crv", "kid", "kty", "x", "y")


def _check_ec_p256(data: dict[str, Any], what: str) -> None:
    if data.get("kty") != "EC" or data.get("crv") != "P-256":
        raise ConfigError(f"{what} must be an EC P-256 JWK (kty 'EC', crv 'P-256'); "
                          f"got kty={data.get('kty')!r}, crv={data.get('crv')!r}")
    for field in ("x", "y"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise ConfigError(f"{what} is missing its '{field}' coordinate")


def public_key_from_jwk(data: Any) -> jwk.JWK:
    """A verification key from a public JWK dict; refuses private material and non-P-256 keys."""
    if not isinstance(data, dict):
        raise ConfigError(f"public JWK must be an object, got {type(data).__name__}")
    _check_ec_p256(data, "public JWK")
    if "d" in data:
        raise ConfigError("public JWK carries a private 'd' component; publish only the public half")
    try:
        return jwk.JWK(kty="EC", crv="P-256", x=data["x"], y=data["y"])
    except Exception as exc:  # jwcrypto raises several types for bad coordinates
        raise ConfigError(f"public JWK is not a valid P-256 point: {exc}") from None


def public_jwk_equal(a: Any, b: Any) -> bool:
    """Two public JWKs name the same key and kid (kty, crv, x, y, kid)."""
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    return all(a.get(f) == b.get(f) for f in _PUBLIC_FIELDS)


class AgentKey:
    """An ES256 private key with a stable `kid`."""

    __slots__ = ("_jwk", "_kid")

    def __init__(self, key: jwk.JWK, kid: str | None = None) -> None:
        exported = key.export(private_key=True, as_dict=True) if key.has_private else None
        if exported is None:
            raise ConfigError("AgentKey needs a private key; got a public-only JWK")
        _check_ec_p256(exported, "agent key")
        self._jwk = key
        self._kid = kid or str(exported.get("kid") or "") or key.thumbprint()

    # ----------------------------------------------------------------- construction
    @classmethod
    def generate(cls, kid: str | None = None) -> AgentKey:
        return cls(jwk.JWK.generate(kty="EC", crv="P-256"), kid)

    @classmethod
    def from_jwk(cls, data: dict[str, Any]) -> AgentKey:
        """From a private JWK dict (``{kty:'EC', crv:'P-256', x, y, d, kid?}``)."""
        if not isinstance(data, dict):
            raise ConfigError(f"private JWK must be an object, got {type(data).__name__}")
        _check_ec_p256(data, "private JWK")
        if not isinstance(data.get("d"), str):
            raise ConfigError("private JWK has no 'd' component; an agent key must include its private half")
        try:
            key = jwk.JWK(**{k: data[k] for k in ("kty", "crv", "x", "y", "d")})
        except Exception as exc:
            raise ConfigError(f"private JWK is not a valid P-256 key: {exc}") from None
        kid = data.get("kid")
        return cls(key, kid if isinstance(kid, str) and kid else None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AgentKey:
        """Read a key file written by `save`; refuse one that group or others can read."""
        p = Path(path)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise ConfigError(f"agent key file {p} does not exist") from None
        if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"agent key file {p} is accessible by group or others "
                              f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {p}` and retry")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"agent key file {p} is not a JSON JWK: {exc}") from None
        return cls.from_jwk(data)

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str], kid: str | None = None) -> AgentKey:
        """Load the key at `path`, or create it there (0600) if there is none; an existing key is never replaced.

        Every process starting on an empty home must end up with the same key (a payment sealed under a
        key that lost the race could never be opened again). Creation runs under an exclusive lock on
        ``<path>.lock``, and the finished file is published with a hard link, which fails instead of
        replacing: whoever links first wins, everyone else loads the winner's key.
        """
        p = Path(path)
        if p.exists():
            return cls.load(p)
        private_dir(p.parent)
        with _exclusive(p.with_name(p.name + ".lock")):
            if p.exists():
                return cls.load(p)
            key = cls.generate(kid)
            if key._publish(p):
                return key
        return cls.load(p)

    def _publish(self, path: Path) -> bool:
        """Write the key to a 0600 temp file and link it to `path` only if `path` does not exist.

        False when another process published first (its key stays; this one is discarded)."""
        tmp = self._write_temp(path.parent)
        try:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError:
                # A filesystem without hard links: under the lock, a create-new rename is still exclusive.
                if path.exists():
                    return False
                os.replace(tmp, path)
            return True
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _write_temp(self, folder: Path) -> str:
        data = dict(self._jwk.export(private_key=True, as_dict=True))
        data["kid"] = self._kid
        # mkstemp creates the file 0600 from the start, so the key is never briefly world-readable.
        fd, tmp = tempfile.mkstemp(prefix=".agent-key-", dir=str(folder))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(data, sort_keys=True))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the private JWK to `path` with mode 0600, atomically (temp file + rename).

        This replaces a key already at `path`: only for a deliberate export; the toolkit creates its
        key with `load_or_create`, which never replaces one."""
        p = Path(path)
        private_dir(p.parent)
        tmp = self._write_temp(p.parent)
        try:
            os.replace(tmp, p)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # ----------------------------------------------------------------- views
    @property
    def kid(self) -> str:
        return self._kid

    def public_jwk(self) -> dict[str, Any]:
        """``{crv, kid, kty, x, y}`` (sorted keys, as the reference puts it in `cnf.jwk`)."""
        pub = self._jwk.export_public(as_dict=True)
        out = {"crv": pub["crv"], "kid": self._kid, "kty": pub["kty"], "x": pub["x"], "y": pub["y"]}
        return out

    def private_bytes(self) -> bytes:
        """The raw private scalar (32 bytes): only for deriving the key that seals secrets at rest."""
        d = str(self._jwk.export(private_key=True, as_dict=True)["d"])
        return base64.urlsafe_b64decode(d + "=" * (-len(d) % 4))

    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint of the public key (independent of the kid)."""
        return str(self._jwk.thumbprint())

    def verification_key(self) -> jwk.JWK:
        return public_key_from_jwk(self.public_jwk())

    def sign_compact(self, protected_header: str, payload: str) -> str:
        """An ES256 compact JWS over exactly these header and payload texts."""
        token = jws.JWS(payload=payload.encode("utf-8"))
        token.add_signature(self._jwk, alg="ES256", protected=protected_header)
        return str(token.serialize(compact=True))

    def __repr__(self) -> str:
        return f"AgentKey(kid={self._kid!r}, ES256)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("AgentKey is not picklable; persist it with save(path)")
