"""The researcher dashboard, served by the coordinator itself.

Server-rendered pages (Jinja2) with a little plain JavaScript, and plots drawn by the
Vega-Lite, Vega and vega-embed builds shipped in ``static/vendor`` — no asset comes from
another server. :func:`coordinator.web.app.mount_dashboard` adds the pages to the
coordinator's application; :func:`coordinator.web.app.issue_login_code` makes a one-time
login link.
"""
