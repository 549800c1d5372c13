"""Tests for the DistributedKube Python wrapper (stdlib unittest only)."""
