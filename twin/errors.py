"""Domain errors of the model. The server maps them to HTTP statuses."""


class TwinError(Exception):
    """Root of every error the project raises on purpose."""


class InputError(TwinError):
    """Bad input from a user: a file, a parameter, a mapping."""


class NotFound(TwinError):
    """Something asked for by id does not exist (or is not visible)."""


class Conflict(TwinError):
    """The request conflicts with the current state."""


class DatabaseUnavailable(TwinError):
    """The database cannot be reached or is not set up."""


class PreconditionFailed(TwinError):
    """The caller's version (If-Match) is not the current one."""


class RateLimited(TwinError):
    """Too many requests from one client."""
