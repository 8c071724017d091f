"""The exceptions releaseops raises.

Every loading error is a :class:`LoadError` whose message names the
reference and says what to do; ``reference`` holds the reference (or the
path, for a missing store). Where the existing tool raised ``ValueError`` or
``FileNotFoundError``, the exception here is also one, so ``except`` clauses
written for it keep working::

    ReleaseopsError
    +-- LoadError
    |   +-- InvalidReferenceError      (ValueError)         "support-agent", "@prod"
    |   |   +-- InvalidEnvironmentNameError (FileNotFoundError) "a@", "a@prod@x"
    |   +-- StoreNotFoundError         (FileNotFoundError)  no .releaseops/ there
    |   +-- NotFoundError              (LookupError)
    |   |   +-- EnvironmentNotFoundError  (FileNotFoundError)
    |   |   +-- BundleNotDeployedError    (ValueError)
    |   |   +-- VersionNotFoundError      (FileNotFoundError)
    |   +-- VerifyError                 a hash does not match: tampered, never served
    |   +-- CorruptStoreError          (ValueError)         half-written or damaged store
    |   +-- InvalidBundleError         (ValueError)         e.g. a policy that is not YAML
    |   +-- StoreReadError             (OSError)            permissions, I/O
    |   +-- AccessDeniedError          (PermissionError)    the server refused the token
    |   +-- ServerError                (ConnectionError)    the server is down or failing
    +-- RenderError                    (ValueError)         a template error, a missing variable
        +-- RenderTypeError            (TypeError)          a variable of a type templates cannot take
"""

from __future__ import annotations

from typing import Optional

__all__ = [
    "ReleaseopsError",
    "LoadError",
    "InvalidReferenceError",
    "InvalidEnvironmentNameError",
    "StoreNotFoundError",
    "NotFoundError",
    "EnvironmentNotFoundError",
    "BundleNotDeployedError",
    "VersionNotFoundError",
    "VerifyError",
    "CorruptStoreError",
    "InvalidBundleError",
    "StoreReadError",
    "AccessDeniedError",
    "ServerError",
    "RenderError",
    "RenderTypeError",
]


class ReleaseopsError(Exception):
    """Base class of every releaseops exception."""

    reference: Optional[str] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LoadError(ReleaseopsError):
    """A bundle could not be loaded; nothing was served in its place."""


class InvalidReferenceError(LoadError, ValueError):
    """Not ``ID@ENV`` nor ``ID==VERSION``."""


class InvalidEnvironmentNameError(InvalidReferenceError, FileNotFoundError):
    """``ID@ENV`` with an ENV no environment can have (the existing tool
    looked it up and raised FileNotFoundError)."""


class StoreNotFoundError(LoadError, FileNotFoundError):
    """No ``.releaseops`` store (or export) at the directory given."""


class NotFoundError(LoadError, LookupError):
    """The environment, bundle or version does not exist."""


class EnvironmentNotFoundError(NotFoundError, FileNotFoundError):
    """The environment of ``ID@ENV`` does not exist."""


class BundleNotDeployedError(NotFoundError, ValueError):
    """The environment exists but runs no version of the bundle."""


class VersionNotFoundError(NotFoundError, FileNotFoundError):
    """The version (pinned, or the one an environment points at) does not exist."""


class VerifyError(LoadError):
    """Content does not match its recorded hash, or the store contradicts its
    hash-chained history: it was changed outside releaseops and is not served."""


class CorruptStoreError(LoadError, ValueError):
    """A store file is unparsable or missing: a half-written or incomplete store."""


class InvalidBundleError(LoadError, ValueError):
    """The bundle verifies but cannot be used (a policy that is not YAML)."""


class StoreReadError(LoadError, OSError):
    """A store file could not be read."""


class AccessDeniedError(LoadError, PermissionError):
    """The server refused the request (no token, a wrong one, too little access)."""


class ServerError(LoadError, ConnectionError):
    """The server could not be reached or failed, and no good bundle was known."""


class RenderError(ReleaseopsError, ValueError):
    """A prompt did not render: a template error or a missing variable."""


class RenderTypeError(RenderError, TypeError):
    """A render variable has a type templates cannot take."""
