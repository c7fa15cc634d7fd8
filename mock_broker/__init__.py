"""An in-process asyncio MEGA broker for tests and local development."""
