"""Wire models shared by the API, the SDK and the MCP server."""
