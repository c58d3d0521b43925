"""Sweeps: a grid of provider settings run as ordinary resumable runs, summarised as tables and heat-maps."""
