"""Parts every family shares: file io and image nodes (``io.*``, ``image.*``), label sets, layers,
losses (``loss.*``), metrics (``metric.*``), the VGG feature networks and their converter, shared
converter helpers, and the toy family used by tests and docs."""
