"""Type stubs of the native part (``crates/releaseops-python``)."""

from os import PathLike
from typing import Any, Callable, Dict, Optional, Union

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
    def dir(self) -> str: ...

def render(template: str, variables: Dict[str, Any], name: str = "prompt") -> str:
    """Renders a template (strict Jinja2 semantics, as the Rust runtime)."""
