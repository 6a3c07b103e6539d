"""Durable storage (L1): crash-safe JSONL, run directories with manifests."""
