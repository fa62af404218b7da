"""Cost reports (what calls cost, grouped by key, project, model, user or prompt) and cost forecasts
(what N requests of a prompt, or a file of requests, would cost on each of several models)."""
