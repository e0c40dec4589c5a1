"""The console's routes, one module per area; each adds its routes to the router."""
