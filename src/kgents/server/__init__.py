"""kgents as a long-running server: the HTTP API (`kgents serve`) and MCP (`kgents.server.mcp`)."""
