"""The secrets a gateway generates for itself when none are configured: the key-encryption
(Fernet) and key-lookup (HMAC) secrets, in `DATA_DIR/secrets.toml` (mode 0600), written once
and shared by every process using that data dir (`settings.Settings.secrets`)."""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path

from cryptography.fernet import Fernet


def data_dir_secrets(data_dir: Path) -> tuple[bytes, bytes]:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: secrets and the database
    path = data_dir / "secrets.toml"
    if not path.exists():
        # Written whole to a private temp file, then linked into place: workers starting
        # together never read a half-written file, and exactly one set of secrets wins.
        body = (
            f'fernet_key = "{Fernet.generate_key().decode()}"\n'
            f'hmac_key = "{secrets.token_urlsafe(48)}"\n'
        )
        tmp = data_dir / f".secrets.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, body.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process won the race; use its secrets
        finally:
            tmp.unlink()
    os.chmod(path, 0o600)
    with path.open("rb") as f:
        data = tomllib.load(f)
    return data["fernet_key"].encode(), data["hmac_key"].encode()
