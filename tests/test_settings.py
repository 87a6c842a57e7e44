"""Settings: defaults, validation, environment mapping and the generated secrets file."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gatewayz.api.http_protocol import ConnectionLimits
from gatewayz.settings import PROVIDERS_FILE, ConfigError, Settings, provider_env_var


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAYZ_WORKERS", "9")  # the constructor never reads the environment
    s = Settings()
    assert s.env == "live"
    assert s.data_dir == Path(".gatewayz")
    assert s.workers == 1
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.database_url is None and s.redis_url is None
    assert s.simulated_provider is True
    assert s.providers_file == PROVIDERS_FILE
    assert s.provider_env == {}

    t = Settings(data_dir=tmp_path / "d")
    assert t.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'gatewayz.db'}"
    assert not (tmp_path / "d").exists()  # computing the URL creates nothing


def test_default_sqlite_url_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings(data_dir=Path("rel"))
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/rel/gatewayz.db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///tmp/x.db",
        "sqlite+aiosqlite://",
        "postgresql+asyncpg://u:p@127.0.0.1:5432/gw",
    ],
)
def test_database_url_accepted(url: str) -> None:
    s = Settings(database_url=url)
    assert s.resolved_database_url == url


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///tmp/x.db",
        "postgresql://u@h/db",
        "postgres+asyncpg://u@h/db",
        "mysql+aiomysql://u@h/db",
        "postgresql+psycopg://u@h/db",
    ],
)
def test_database_url_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="GATEWAYZ_DATABASE_URL must start with"):
        Settings(database_url=url)
    with pytest.raises(ValueError, match="GATEWAYZ_DATABASE_URL"):
        Settings.from_env(environ={"GATEWAYZ_DATABASE_URL": url})


def test_workers_at_least_one() -> None:
    assert Settings(workers=1).workers == 1
    assert Settings.from_env(environ={"GATEWAYZ_WORKERS": "4"}).workers == 4
    for bad in (0, -2):
        with pytest.raises(ValueError, match="GATEWAYZ_WORKERS must be >= 1"):
            Settings(workers=bad)
    with pytest.raises(ValueError, match="GATEWAYZ_WORKERS must be >= 1"):
        Settings.from_env(environ={"GATEWAYZ_WORKERS": "0"})


@pytest.mark.parametrize("env", ["live", "test", "staging", "dev"])
def test_env_allowed(env: str) -> None:
    assert Settings.from_env(environ={"GATEWAYZ_ENV": env}).env == env


@pytest.mark.parametrize("env", ["prod", "production", "LIVE", ""])
def test_env_restricted(env: str) -> None:
    with pytest.raises(ConfigError, match="GATEWAYZ_ENV"):
        Settings.from_env(environ={"GATEWAYZ_ENV": env})


def test_settings_are_frozen_and_strict_about_fields() -> None:
    s = Settings()
    with pytest.raises(ValueError):
        s.workers = 3  # type: ignore[misc]
    with pytest.raises(ValueError):
        Settings(no_such_field=1)  # type: ignore[call-arg]


def test_from_env_reads_values_and_rejects_unknown_variables(tmp_path: Path) -> None:
    s = Settings.from_env(
        environ={
            "GATEWAYZ_DATA_DIR": str(tmp_path),
            "GATEWAYZ_PORT": "9001",
            "GATEWAYZ_UPSTREAM_READ_TIMEOUT_S": "12.5",
            "GATEWAYZ_SIMULATED_PROVIDER": "false",
            "HOME": "/root",
        }
    )
    assert (s.data_dir, s.port, s.upstream_read_timeout_s) == (tmp_path, 9001, 12.5)
    assert s.simulated_provider is False
    with pytest.raises(ConfigError, match="GATEWAYZ_WORKER, GATEWAYZ_ZZZ"):
        Settings.from_env(environ={"GATEWAYZ_ZZZ": "1", "GATEWAYZ_WORKER": "2"})


def test_from_env_overrides_win() -> None:
    s = Settings.from_env(
        environ={"GATEWAYZ_PORT": "9001", "OPENAI_API_KEY": "sk"},
        port=9100,
        provider_env={"groq": {"api_key": "g"}},
    )
    assert s.port == 9100
    assert s.provider_env == {"openai": {"var:OPENAI_API_KEY": "sk"}, "groq": {"api_key": "g"}}


def test_provider_env_var_names() -> None:
    assert provider_env_var("vercel-ai-gateway", "API_KEY") == (
        "GATEWAYZ_PROVIDER_VERCEL_AI_GATEWAY_API_KEY"
    )
    assert provider_env_var("lm-studio", "BASE_URL") == "GATEWAYZ_PROVIDER_LM_STUDIO_BASE_URL"


# ---------------------------------------------------------------- secrets
def test_secrets_generated_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    fernet, hmac = Settings(data_dir=data_dir).secrets
    path = data_dir / "secrets.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(fernet)  # a valid key
    assert len(hmac) >= 32
    with path.open("rb") as f:
        stored = tomllib.load(f)
    assert (stored["fernet_key"].encode(), stored["hmac_key"].encode()) == (fernet, hmac)

    mtime = path.stat().st_mtime_ns
    again = Settings(data_dir=data_dir).secrets
    assert again == (fernet, hmac)
    assert path.stat().st_mtime_ns == mtime  # not rewritten

    other = Settings(data_dir=tmp_path / "elsewhere").secrets
    assert other[0] != fernet and other[1] != hmac


def test_secrets_file_permissions_tightened(tmp_path: Path) -> None:
    Settings(data_dir=tmp_path).secrets  # noqa: B018
    path = tmp_path / "secrets.toml"
    os.chmod(path, 0o644)
    Settings(data_dir=tmp_path).secrets  # noqa: B018
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_explicit_secrets_used(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    s = Settings.from_env(
        environ={
            "GATEWAYZ_DATA_DIR": str(tmp_path),
            "GATEWAYZ_FERNET_KEY": key,
            "GATEWAYZ_HMAC_KEY": "hmac-secret",
        }
    )
    assert s.secrets == (key.encode(), b"hmac-secret")
    assert not (tmp_path / "secrets.toml").exists()
    assert "hmac-secret" not in repr(s) and key not in repr(s)


@pytest.mark.parametrize("which", ["fernet_key", "hmac_key"])
def test_only_one_explicit_secret_is_an_error(tmp_path: Path, which: str) -> None:
    value = Fernet.generate_key().decode() if which == "fernet_key" else "h"
    s = Settings(data_dir=tmp_path, **{which: value})
    with pytest.raises(ConfigError, match="set both GATEWAYZ_FERNET_KEY and GATEWAYZ_HMAC_KEY"):
        s.secrets  # noqa: B018
    assert not (tmp_path / "secrets.toml").exists()


@pytest.mark.parametrize("bad", ["not-a-key", "x" * 10, "a" * 44])
def test_bad_fernet_key_rejected(tmp_path: Path, bad: str) -> None:
    # Checked when the settings are built (at startup), not when the key is first used.
    with pytest.raises(ValueError, match="Fernet key"):
        Settings(data_dir=tmp_path, fernet_key=bad, hmac_key="h")


def test_secrets_generated_once_when_processes_race(tmp_path: Path) -> None:
    """Workers starting together on a fresh data dir all end up with the same secrets."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(_secrets_of, [str(tmp_path)] * 8)
    assert len(set(results)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.toml"]


def _secrets_of(data_dir: str) -> tuple[bytes, bytes]:
    return Settings(data_dir=Path(data_dir)).secrets


def test_slow_client_timeouts_from_the_environment_and_their_defaults() -> None:
    """The two timeouts are settings (GATEWAYZ_*_READ_TIMEOUT_S, positive); an application run
    without its lifespan gives the HTTP protocol the same defaults."""
    s = Settings.from_env(
        {"GATEWAYZ_HEAD_READ_TIMEOUT_S": "2.5", "GATEWAYZ_BODY_READ_TIMEOUT_S": "7"}
    )
    assert ConnectionLimits.of(s) == ConnectionLimits(2.5, 7.0)
    defaults = ConnectionLimits.defaults()
    assert defaults == ConnectionLimits.of(Settings()) == ConnectionLimits(10, 30)
    with pytest.raises(ConfigError, match="GATEWAYZ_HEAD_READ_TIMEOUT_S"):
        Settings.from_env({"GATEWAYZ_HEAD_READ_TIMEOUT_S": "0"})


def test_log_level_and_format_are_checked_and_case_insensitive() -> None:
    s = Settings.from_env(environ={"GATEWAYZ_LOG_LEVEL": "WARNING", "GATEWAYZ_LOG_FORMAT": "JSON"})
    assert (s.log_level, s.log_format) == ("warning", "json")
    assert (Settings().log_level, Settings().log_format) == ("info", "text")
    with pytest.raises(ConfigError, match="GATEWAYZ_LOG_FORMAT"):
        Settings.from_env(environ={"GATEWAYZ_LOG_FORMAT": "xml"})
    with pytest.raises(ConfigError, match="GATEWAYZ_LOG_LEVEL"):
        Settings.from_env(environ={"GATEWAYZ_LOG_LEVEL": "loud"})
