"""The coordinator over HTTP: the researcher API, the pull nodes' routes, the Python client."""
