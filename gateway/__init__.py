"""wa-gateway: a self-hosted WhatsApp gateway microservice."""

__version__ = "0.1.0"
