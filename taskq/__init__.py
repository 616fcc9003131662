"""taskq: the public Python API of Task Queue Engine.

The one import users need: a typed HTTP client (``Client``, ``AsyncClient``), the
``task`` decorator that defines typed task types, and ``TaskContext``. Importing it
imports nothing from the engine's internal packages.
"""

from __future__ import annotations

__all__: list[str] = []
