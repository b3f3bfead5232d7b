"""The OpenAI face's blueprint, served under /v1 and, as an alias, /openai/v1."""

from __future__ import annotations

from flask import Blueprint

v1 = Blueprint("v1", __name__)
