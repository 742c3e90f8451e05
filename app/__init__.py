"""User interfaces: the `archivist` CLI and the Streamlit app, over the services in `app.services`."""

from app.services import Services, workspace_home

__all__ = ["Services", "workspace_home"]
