"""Reaching the sites: the abstract and the HTTP federation, secure aggregation, failures."""
