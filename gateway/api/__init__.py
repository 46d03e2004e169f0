"""The HTTP and WebSocket surface: the one gate middleware, the envelope, errors, routes and the API description."""
