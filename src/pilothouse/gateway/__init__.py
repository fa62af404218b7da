"""The inference path: providers, pricing, token accounting and the request pipeline."""
