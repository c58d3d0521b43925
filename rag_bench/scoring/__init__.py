"""Pure scoring functions shared by the metric plugins."""
