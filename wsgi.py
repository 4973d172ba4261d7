"""The WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

from handover import create_app

app = create_app()
