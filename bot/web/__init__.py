"""The web adapter: a gallery and a visual editor behind Discord sign-in (docs/web.md).

``chibify web`` serves it on its own; ``python -m bot`` runs it in its own process when ``CHIBIFY_WEB_PORT``
is set. Pages are rendered on the server (aiohttp.web + Jinja2) with a little plain JavaScript. Like the other
adapters it calls the use cases in :mod:`bot.studio` and never imports torch.
"""
