"""The node's HTTP boundary: the FastAPI app, signed-request reading, pull mode and replay."""
