"""The asyncio engine: connections, dialing, the pool, the retry coordinator and both clients."""
