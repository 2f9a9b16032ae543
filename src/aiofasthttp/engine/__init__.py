"""The asyncio layer: dialling (names, Happy Eyeballs, proxies), pools, the client."""
