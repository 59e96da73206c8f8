"""Settings, read once from the environment (``LEDGER_*``) and passed in."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class LedgerSettings(BaseSettings):
    """Where the ledger lives. The default is an embedded SQLite file, so a
    new user needs no server; PostgreSQL is chosen by URL."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_")

    database_url: str = "sqlite:///ledger.db"
    # The directory of the ledger's key material (the Ed25519 key that signs
    # checkpoints and certificates, created on first use), an absolute path,
    # mode 0700. Unset: beside a SQLite database file (ledger.db keeps
    # ledger.keys/); a ledger in PostgreSQL must set it.
    key_directory: Path | None = None
    # Who issues 志愿服务记录证明 certificates.
    certificate_organisation: str = "昆山市新时代文明实践中心"
    certificate_person_in_charge: str = "中心负责人"
    certificate_handler: str = "志愿服务记录专员"
    certificate_contact: str = "0512-00000000"


@lru_cache
def get_settings() -> LedgerSettings:
    return LedgerSettings()
