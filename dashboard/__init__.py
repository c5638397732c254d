"""The admin dashboard (aiohttp-jinja2 sub-application); it reads the provisioning log."""
