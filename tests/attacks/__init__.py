"""Adversarial tests of the privacy gate: attacks run end to end through real nodes."""
