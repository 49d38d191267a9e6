"""Alembic environment: the URL comes from the caller (``twin.migrate``)."""

import importlib

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from twin.models import Base

# every module that declares tables on Base (so autogenerate sees all of them)
for _mod in ("twin.sensors.models", "twin.scenarios.models"):
    try:
        importlib.import_module(_mod)
    except ModuleNotFoundError as exc:
        if not exc.name or not _mod.startswith(exc.name):
            raise

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001, ANN201
    # tables that PostGIS / pgRouting own are not ours
    if type_ == "table" and name in {"spatial_ref_sys", "topology", "layer"}:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
