"""Arithmetic a step runs on one site's rows (GLM families, local fits, mixtures, ComBat)."""
