"""Report model (the JSON schema's single source), statistics, loading and saving."""
