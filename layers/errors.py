"""Errors of the layer catalogue and its renderers (all under ``TwinError``)."""

from twin.errors import InputError, NotFound, TwinError


class CatalogError(TwinError):
    """The layer catalogue file is invalid."""


class LayerNotFound(NotFound):
    """No such layer, or the caller may not see it (both answer 404)."""


class InvalidParameter(InputError):
    """A query parameter is malformed (bbox, limit, datetime, properties …)."""


class InvalidFilter(InputError):
    """A CQL2 filter cannot be parsed or names unknown properties."""


class TileOutOfRange(NotFound):
    """z/x/y outside the WebMercatorQuad matrix or the layer's zoom range."""
