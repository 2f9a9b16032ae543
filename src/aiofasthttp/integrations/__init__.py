"""Integrations with other libraries, each an optional extra.

- :mod:`aiofasthttp.integrations.httpx`: ``AsyncTransport``, this engine under
  ``httpx.AsyncClient`` (``pip install "aiofasthttp[httpx]"``);
- :mod:`aiofasthttp.integrations.opentelemetry`: ``instrument(client)``, spans and a
  duration histogram per request (``pip install "aiofasthttp[opentelemetry]"``).

Nothing in the engine imports them.
"""
