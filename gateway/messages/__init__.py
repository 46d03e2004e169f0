"""Messages: the content rules of CONTRACT §11, the store's service (§12) and message actions."""
