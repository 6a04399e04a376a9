"""The node's store: the CDM tables (SQLAlchemy 2) and how to open them."""
