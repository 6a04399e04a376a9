"""The site admin pages, served by the node itself under ``/ui`` (no JavaScript, no CDN)."""

from node.web.pages import mount_admin_pages

__all__ = ["mount_admin_pages"]
