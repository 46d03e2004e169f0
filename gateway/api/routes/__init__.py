"""HTTP and WebSocket routes, one module per resource; each exports ``routes``."""
