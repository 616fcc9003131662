"""The operator's dashboard at ``/ui``: server-rendered pages over the same use cases
as the API, a session cookie instead of an API key header, CSRF on every POST."""

from entrypoints.http.ui.app import UiDispatch, build_ui

__all__ = ["UiDispatch", "build_ui"]
