"""Test support: an in-process federation and site splitting."""
