"""Providers: one module per wire format, all behind the small protocol in `base`."""
