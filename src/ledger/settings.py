"""Settings, read from the environment (``LEDGER_*``) once, by the entry
point (the CLI's root callback, the HTTP app's factory), and passed in."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class LedgerSettings(BaseSettings):
    """Where the ledger lives. The default is an embedded SQLite file, so a
    new user needs no server; PostgreSQL is chosen by URL."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_")

    database_url: str = "sqlite:///ledger.db"
    # The directory of the ledger's key material (the Ed25519 key that signs
    # checkpoints and certificates, and the secret of the ID-number digest,
    # each created on first use), an absolute path, mode 0700. Unset: beside
    # a SQLite database file (ledger.db keeps ledger.keys/); for PostgreSQL,
    # in the user's data directory under the database's name
    # ($XDG_DATA_HOME or ~/.local/share, then ledger/HOST-PORT-DB.keys).
    key_directory: Path | None = None
    # How long a writer waits for the ledger's append lock before it gives
    # up with "ledger busy" (HTTP 503 ledger_busy, a CLI exit code), and how
    # long an append may hold the lock (PostgreSQL ends a longer one, so a
    # writer stopped while holding it cannot block the others for ever).
    lock_wait_seconds: float = 10.0
    append_timeout_seconds: float = 60.0
    # Upgrade an older ledger's schema when this release first opens it;
    # false: refuse, in one line, until `ledger migrate` has run (for sites
    # that back up first, docs/operations.md).
    auto_migrate: bool = True
    # Concurrent API writes of one server process share append transactions
    # (``ledger.application.group_commit``); false: each request appends
    # on its own, as before (for comparison, see bench/write_load.py).
    group_commit: bool = True
    # Who issues 志愿服务记录证明 certificates: the organisation profile. Each
    # value is set here or in the TOML file ``certificate_profile`` names (keys
    # organisation, person_in_charge, handler, contact, seal_image); `ledger
    # certificate` refuses while any is unset or a placeholder.
    certificate_organisation: str | None = None
    certificate_person_in_charge: str | None = None
    certificate_handler: str | None = None
    certificate_contact: str | None = None
    certificate_profile: Path | None = None
    # An image of the organisation's seal (PNG with transparency), printed in
    # the seal area; unset, the area is left to be stamped.
    certificate_seal_image: Path | None = None
    # A TrueType font to print certificates with instead of the shipped one
    # (GB 2312): for names with characters outside it.
    certificate_font: Path | None = None
    # The ledger's public address (https://…): certificates' QR codes then
    # hold the URL of its `/verify` page; unset, they hold the bare token.
    public_base_url: str | None = None
    # Browser origins (``https://dash.example.gov.cn``) whose pages may call
    # the HTTP API (CORS); none by default. As a variable, a JSON list.
    cors_origins: list[str] = []
    # ``/readyz`` answers 503 while any projection's oldest unprocessed
    # event has waited longer than this.
    ready_max_lag_seconds: float = 5.0
    # Where the workers of ``ledger serve --workers N`` pool their metrics
    # (prometheus-client's multiprocess mode); set by ``ledger serve``.
    metrics_directory: Path | None = None

    def as_environment(self) -> dict[str, str]:
        """These settings as the ``LEDGER_*`` variables that read back as
        them: the environment of a process to be configured exactly like
        this one (the server ``ledger serve`` starts)."""
        prefix = self.model_config.get("env_prefix", "")
        return {
            f"{prefix}{name}".upper(): (
                json.dumps(value) if isinstance(value, list) else str(value)
            )
            for name, value in self.model_dump(mode="json").items()
            if value is not None
        }
