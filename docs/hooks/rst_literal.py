"""MkDocs hook: drop the reST ``::`` that introduces a docstring's code example.

The docstrings end a sentence with ``::`` before an indented example, as reST
wants; Markdown renders the example as code already and would show the ``::``
alone as a paragraph.
"""

from __future__ import annotations

from typing import Any


def on_page_content(html: str, **kwargs: Any) -> str:
    return html.replace("<p>::</p>\n", "")
