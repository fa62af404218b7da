"""The dashboard: server-rendered pages (Jinja2) over the same store functions and API the CLI uses.

`install_ui(api)` (ui/app.py) adds the pages at `/`, the static assets at `/ui/static/` (all shipped in the
package, no CDN) and the sign-in routes. Pages read through the store functions the API routes call; every
action a page offers is a call to the JSON API from the browser, authenticated by the session cookie and its
CSRF token (server/session_auth.py), so it runs with the same authorisation and lands in the audit log.
"""
