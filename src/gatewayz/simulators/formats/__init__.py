"""Wire formats of the simulator besides OpenAI's, one module each (see server._format_routes)."""
