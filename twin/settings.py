"""Settings for the model and the managed database (environment prefix ``TWIN_``)."""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_KEY_BYTES = 32
# keys that were ever committed here (the old development default): never valid
PUBLISHED_KEYS = frozenset({"dev-insecure-change-me-0123456789abcdef"})


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
    secret_key: str | None = Field(
        default=None, description="Token signing key (at least 32 bytes); unset: a random "
        "key generated once into data_dir/secret.key.")
    token_minutes: int = Field(default=60, description="Lifetime of bearer tokens.")
    user_cache_seconds: float = Field(
        default=10.0, ge=0, le=30, description="How long a worker trusts its last look-up "
        "of a token's user (a removed or demoted user loses access after it).")
    environment: str = Field(
        default="production", description="Only an explicit 'development' accepts a weak "
        "TWIN_SECRET_KEY.")
    database_replica_urls: str = Field(
        default="", description="Comma-separated URLs of streaming replicas that take "
        "feature and search reads (writes stay on the primary).")
    replica_max_lag_bytes: int = Field(
        default=16 * 1024 * 1024, ge=0, description="A replica further behind the primary "
        "(bytes of WAL) is skipped until it catches up.")
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db: the notify bus on Redis pub/sub "
        "(one relay per cluster forwards PostgreSQL notifications); unset: LISTEN/NOTIFY.")
    metrics_token: str | None = Field(
        default=None, description="A bearer token a Prometheus scraper sends for /metrics "
        "(staff tokens work too).")
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
    def development(self) -> bool:
        """True only when TWIN_ENVIRONMENT says ``development`` (in any case)."""
        return self.environment.strip().lower() == "development"

    @property
    def secret_file(self) -> Path:
        return self.data_dir / "secret.key"

    def signing_key(self) -> str:
        """The key that signs tokens: TWIN_SECRET_KEY, else the generated
        ``data_dir/secret.key`` (created on first use, mode 0600)."""
        if self.secret_key:
            return self.secret_key
        return _generated_key(self.secret_file)

    def key_problem(self) -> str | None:
        """Why the signing key must not be used (None when it may): shorter than
        ``MIN_KEY_BYTES``, too uniform, published in the repository, or a key file others
        can read. An explicit ``development`` environment accepts any key."""
        if self.development:
            return None
        how = (f"unset TWIN_SECRET_KEY (a random key is then kept in {self.secret_file}) "
               "or set a random one: python -c 'import secrets; "
               "print(secrets.token_urlsafe(48))'")
        if not self.secret_key:
            try:
                key = self.signing_key()
            except OSError as exc:
                return f"cannot read or create the token key file {self.secret_file}: {exc}"
            if self.secret_file.stat().st_mode & 0o077:
                return f"{self.secret_file} is readable by others: chmod 600 it"
            where = str(self.secret_file)
        else:
            key, where = self.secret_key, "TWIN_SECRET_KEY"
        if key.strip() in PUBLISHED_KEYS:
            return f"{where} is a key published in the repository; {how}"
        size = len(key.encode())
        if size < MIN_KEY_BYTES:
            return (f"{where} is {size} byte{'s' if size != 1 else ''} long, under the "
                    f"{MIN_KEY_BYTES} bytes of secret a server needs; {how}")
        if len(set(key)) < 10:
            return f"{where} repeats too few characters to be a secret; {how}"
        return None

    @property
    def replica_urls(self) -> list[str]:
        return [u.strip() for u in self.database_replica_urls.split(",") if u.strip()]

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


_keys: dict[Path, str] = {}
_keys_lock = threading.Lock()


def _generated_key(path: Path) -> str:
    """Read ``path``, creating it first with a random key (mode 0600). Several workers
    may start at once: the key is written to a private file and linked into place, so
    every process reads the same complete key."""
    path = path.resolve()
    with _keys_lock:
        if path in _keys:
            return _keys[path]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(48) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass  # another process made it first: use theirs
            finally:
                tmp.unlink(missing_ok=True)
        key = path.read_text().strip()
        if not key:
            raise OSError(f"{path} is empty")
        _keys[path] = key
        return key
