"""Settings for the model and the managed database (environment prefix ``TWIN_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """All ``TWIN_*`` settings. Build one with ``Settings()``; never at import time."""

    model_config = SettingsConfigDict(env_prefix="TWIN_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None, description="Use this PostgreSQL instead of the managed cluster."
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / ".twin-data", description="Managed cluster, COGs, caches."
    )
    db_port: int = Field(default=5544, description="Port of the managed cluster (127.0.0.1).")
    db_name: str = Field(default="twin", description="Database name in the managed cluster.")
    db_pool_size: int = Field(default=10, description="Connections per server worker.")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    secret_key: str = Field(
        default="dev-insecure-change-me-0123456789abcdef", description="Token signing key."
    )
    token_minutes: int = Field(default=60, description="Lifetime of bearer tokens.")
    environment: str = Field(default="development", description="'production' refuses defaults.")
    layers_file: Path = Field(default=PROJECT_ROOT / "data" / "layers.yaml")
    tile_cache_mb: int = Field(default=256, description="In-process tile cache size.")
    mqtt_url: str = "mqtt://127.0.0.1:18830"
    open311_posts_per_minute: int = Field(default=10, description="Open311 POSTs per client.")
    writes_per_minute: int = Field(
        default=3000, description="Other writes per client (token, gateway key or address); "
        "0: no limit.")
    login_failures_per_minute: int = Field(
        default=10, description="Failed sign-ins per user name (ten times as many per address) "
        "before 429.")

    @property
    def managed(self) -> bool:
        """True when the project runs its own PostgreSQL cluster."""
        return self.database_url is None

    @property
    def pg_dir(self) -> Path:
        return self.data_dir / "pg"

    @property
    def terrain_dir(self) -> Path:
        return self.data_dir / "terrain"

    def url(self, dbname: str | None = None) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for the database, or for ``dbname``."""
        from sqlalchemy.engine import make_url

        if self.database_url:
            u = make_url(self.database_url)
            if u.drivername in ("postgresql", "postgres"):
                u = u.set(drivername="postgresql+psycopg")
        else:
            from twin.localdb import superuser

            u = make_url(
                f"postgresql+psycopg://{superuser()}@127.0.0.1:{self.db_port}/{self.db_name}"
            )
        if dbname:
            u = u.set(database=dbname)
        return u.render_as_string(hide_password=False)
