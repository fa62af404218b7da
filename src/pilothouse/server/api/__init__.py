"""Management API routers, one per area, all under /api."""
