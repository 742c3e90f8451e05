"""The OpenAI-compatible HTTP API: `create_app(services)`, API keys in `KeyStore`."""

from app.api.keys import KeyInfo, KeyStore
from app.api.server import create_app, is_loopback

__all__ = ["KeyInfo", "KeyStore", "create_app", "is_loopback"]
