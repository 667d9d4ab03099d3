"""Domain operations. No transport code here: no FastAPI, Typer or MCP imports (a test enforces it)."""
