"""The simulator's wire formats, one module or package per provider family, named exactly like
the family package it pairs with (`gatewayz.providers.<family>`). Each exports ROUTES, picked up
by the server at start (see server._format_routes); `openai` also holds the Chat Completions
format the server's core routes answer in."""
