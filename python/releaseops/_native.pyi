"""Type stubs of the native part (``crates/releaseops-python``)."""

from os import PathLike
from typing import Any, Callable, Dict, Optional, Tuple, Union

__version__: str

class Loader:
    """releaseops-runtime's loader: verified, cached, revalidated."""

    def __init__(
        self, path: Union[str, PathLike[str]], revalidate: float, factory: Callable[[Dict[str, Any]], Any]
    ) -> None: ...
    def load(self, reference: str) -> Any:
        """What ``factory`` made of the bundle; reads the store without the GIL when needed."""
    def load_cached(self, reference: str) -> Optional[Any]:
        """The same when memory can answer, else None."""
    def invalidate(self) -> None: ...
    @property
    def last_error(self) -> Optional[str]: ...
    @property
    def dir(self) -> Any: ...

class HttpClient:
    """HttpRuntimeLoader's requests; the token is held here."""

    def __init__(self, base: str, token: Optional[str], timeout: float) -> None: ...
    def fetch(
        self, reference: str, path: str, etag: Optional[str] = None, timeout: Optional[float] = None
    ) -> Tuple[int, str, Optional[Dict[str, Any]], str]:
        """(status, ETag, the verified bundle's data for a 200, the body's text otherwise)."""
    def redact(self, text: str) -> str: ...

def render(template: str, variables: Dict[str, Any], name: str = "prompt") -> str:
    """Renders a template (strict Jinja2 semantics, as the Rust runtime)."""

def parse_reference(reference: str) -> Tuple[str, Optional[str], Optional[str]]:
    """(id, environment, version) of ``ID@ENV`` / ``ID==VERSION``; one of the last two is None."""
