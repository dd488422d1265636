"""The owner's key: the private ES256 JWK on the owner's side, and the public half an agent pins.

The private key lives where the owner decides (the owner's CLI, `amp-tools serve`), by default in
``$AMP_TOOLS_HOME/owner/owner-key.jwk``: the directory is made 0700 and the file 0600 whatever the
umask, written atomically, and a file or directory that group or others can reach is refused on
load. Agents never hold it: they are given the public JWK (or its file) and check signatures with
it. `resolve_owner_key` is the one place that turns an argument or ``AMP_TOOLS_OWNER_KEY`` into a
pinned key, so the toolkit, the MCP server and the CLI read it the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jwcrypto import jwk

from amp_tools.amp.keys import public_key_from_jwk
from amp_tools.config import home_path
from amp_tools.errors import ConfigError

__all__ = ["OWNER_KEY_ENV", "OWNER_KEY_FILE_ENV", "OwnerKey", "OwnerPublicKey", "default_owner_key_path",
           "load_owner_signer", "resolve_owner_key"]

OWNER_KEY_ENV = "AMP_TOOLS_OWNER_KEY"
#: The owner's private key file, on the owner's side (CLI, `serve`), when not at the default location.
OWNER_KEY_FILE_ENV = "AMP_TOOLS_OWNER_KEY_FILE"
_KEY_FILE = "owner-key.jwk"


def default_owner_key_path() -> Path:
    """``$AMP_TOOLS_HOME/owner/owner-key.jwk`` (not created)."""
    return home_path() / "owner" / _KEY_FILE


def _public_of(key: jwk.JWK) -> dict[str, Any]:
    pub = key.export_public(as_dict=True)
    return {"crv": pub["crv"], "kid": str(key.thumbprint()), "kty": pub["kty"], "x": pub["x"], "y": pub["y"]}


class OwnerPublicKey:
    """The owner's public key as an agent pins it; `kid` is its RFC 7638 thumbprint."""

    __slots__ = ("_jwk", "kid")

    def __init__(self, key: jwk.JWK) -> None:
        self._jwk = key
        self.kid = str(key.thumbprint())

    @classmethod
    def from_jwk(cls, data: Any) -> OwnerPublicKey:
        if isinstance(data, Mapping):
            data = {k: data[k] for k in ("kty", "crv", "x", "y") if k in data} | (
                {"d": data["d"]} if "d" in data else {})
        if isinstance(data, dict) and "d" in data:
            raise ConfigError("the owner key given to an agent carries the private 'd' component; give the agent "
                              "only the public JWK (`amp-tools owner show`)")
        return cls(public_key_from_jwk(data))

    def public_jwk(self) -> dict[str, Any]:
        return _public_of(self._jwk)

    @property
    def verification_key(self) -> jwk.JWK:
        return self._jwk

    def __repr__(self) -> str:
        return f"OwnerPublicKey(kid={self.kid!r})"


class OwnerKey:
    """The owner's private ES256 key (never printed, never given to an agent)."""

    __slots__ = ("_jwk",)

    def __init__(self, key: jwk.JWK) -> None:
        if not key.has_private:
            raise ConfigError("an owner signing key needs its private half")
        self._jwk = key

    @classmethod
    def generate(cls) -> OwnerKey:
        return cls(jwk.JWK.generate(kty="EC", crv="P-256"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OwnerKey:
        p = Path(path).expanduser()
        try:
            st = p.stat()
        except FileNotFoundError:
            raise ConfigError(f"no owner key at {p}", hint="Create one with `amp-tools owner init`.") from None
        if os.name == "posix":
            for what, mode in (("file", st.st_mode), ("directory", p.parent.stat().st_mode)):
                if mode & (stat.S_IRWXG | stat.S_IRWXO):
                    raise ConfigError(f"the owner key {what} {p if what == 'file' else p.parent} is accessible by "
                                      f"group or others (mode {stat.S_IMODE(mode):04o})",
                                      hint=f"Run `chmod {'600' if what == 'file' else '700'} "
                                           f"{p if what == 'file' else p.parent}` and retry.")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("kty") != "EC" or data.get("crv") != "P-256" \
                    or not isinstance(data.get("d"), str):
                raise ValueError("not a private EC P-256 JWK")
            key = jwk.JWK(**{k: data[k] for k in ("kty", "crv", "x", "y", "d")})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"the owner key file {p} is not a private ES256 JWK: {exc}") from None
        return cls(key)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the private JWK: directory 0700, file 0600 (chmod'ed, so the umask does not matter)."""
        p = Path(path).expanduser()
        if p.exists():
            raise ConfigError(f"an owner key already exists at {p}; refusing to overwrite it",
                              hint="Use it (`amp-tools owner show`), or pass --path for a new one.")
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(p.parent, 0o700)
        text = json.dumps(dict(self._jwk.export(private_key=True, as_dict=True)) | {"kid": self.kid},
                          sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".owner-key-", dir=str(p.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.link(tmp, p)  # fails if another init won the race: never overwrite a key
        except FileExistsError:
            raise ConfigError(f"an owner key already exists at {p}; refusing to overwrite it") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return p

    @property
    def kid(self) -> str:
        return str(self._jwk.thumbprint())

    def public(self) -> OwnerPublicKey:
        return OwnerPublicKey(public_key_from_jwk(_public_of(self._jwk)))

    def public_jwk(self) -> dict[str, Any]:
        return _public_of(self._jwk)

    @property
    def signing_key(self) -> jwk.JWK:
        return self._jwk

    def __repr__(self) -> str:
        return f"OwnerKey(kid={self.kid!r}, ES256)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("OwnerKey is not picklable")


def resolve_owner_key(value: Any = None, env: Mapping[str, str] | None = None) -> OwnerPublicKey | None:
    """The pinned owner key from `value` (an `OwnerPublicKey`, a JWK dict, JSON text or a file path) or,
    when `value` is None, from ``AMP_TOOLS_OWNER_KEY``; None when neither is set (unsigned mode)."""
    if value is None:
        raw = (os.environ if env is None else env).get(OWNER_KEY_ENV, "").strip()
        if not raw:
            return None
        value, source = raw, OWNER_KEY_ENV
    else:
        source = "owner_key"
    if isinstance(value, OwnerPublicKey):
        return value
    if isinstance(value, OwnerKey):
        return value.public()
    if isinstance(value, Mapping):
        return OwnerPublicKey.from_jwk(dict(value))
    if isinstance(value, os.PathLike) or (isinstance(value, str) and not value.lstrip().startswith("{")):
        path = Path(os.fspath(value)).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read the owner's public key file {path}: {exc.strerror or exc}",
                              hint="Pass the public JWK printed by `amp-tools owner show` (a JSON object, or a "
                                   "file holding it).") from None
        value = text
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            raise ConfigError(f"{source} is not JSON: expected the owner's public JWK "
                              "(`amp-tools owner show` prints it)") from None
        return OwnerPublicKey.from_jwk(data)
    raise ConfigError(f"{source} must be a JWK dict, JSON text or a file path, not {type(value).__name__}")


def load_owner_signer(path: str | os.PathLike[str] | None = None) -> OwnerKey | None:
    """The owner's private key at `path` (else ``AMP_TOOLS_OWNER_KEY_FILE``), or at the default location
    if it exists there; None when none was named and none was created (`amp-tools owner init` not run):
    decisions stay unsigned."""
    if path is None and os.environ.get(OWNER_KEY_FILE_ENV, "").strip():
        path = os.environ[OWNER_KEY_FILE_ENV].strip()
    if path is not None:
        return OwnerKey.load(path)
    default = default_owner_key_path()
    return OwnerKey.load(default) if default.exists() else None
