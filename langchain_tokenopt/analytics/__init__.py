"""Reports, suggestions and charts over the usage events a `UsageTracker` records."""
