"""Reading the dashboard's pages in tests: the CSRF token a form carries."""

from __future__ import annotations

import re

import httpx

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_token(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found is not None, f"no CSRF token in the page:\n{page.text[:500]}"
    return found.group(1)
