"""handover: carries child protection work from the Emergency Duty Team to the daytime teams."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from handover.config import PROJECT_ROOT


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: configuration, database, keys, API and CLI."""
    from handover import audit_api, cli, config, crypto, db, errors, http, openapi, scheduler, ui
    from handover.auth import service as auth_service
    from handover.auth import views as auth_views
    from handover.delivery import api as delivery_api
    from handover.delivery import views as delivery_views
    from handover.directory import api as directory_api
    from handover.directory import views as directory_views
    from handover.ops import init_app as init_ops
    from handover.records import api as records_api
    from handover.records import editor, export
    from handover.records import views as records_views
    from handover.reports import views as reports_views

    settings = {**config.load(), **(test_config or {})}
    app = Flask(
        __name__,
        instance_path=str(settings.get("INSTANCE_PATH") or PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    app.config.from_mapping(settings)
    app.json = http.JSONProvider(app)
    init_ops(app)  # first: logs formatted, request ids and timing before any other hook
    db.init_app(app)
    crypto.init_app(app)
    errors.init_app(app)
    ui.init_app(app)  # Jinja: GOV.UK Frontend macros, filters, menu; HTML error pages
    auth_service.init_app(app)
    auth_views.init_app(app)
    app.extensions["handover.exports"] = export.load_mappings(
        config.project_path(app.config["EXPORTS_DIR"])
    )
    app.register_blueprint(records_api.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(directory_api.bp)
    app.register_blueprint(audit_api.bp)
    app.register_blueprint(delivery_api.bp)
    app.register_blueprint(records_views.bp)
    app.register_blueprint(editor.bp)
    app.register_blueprint(delivery_views.bp)
    app.register_blueprint(reports_views.bp)
    app.register_blueprint(directory_views.bp)
    cli.init_app(app)
    scheduler.init_app(app)
    return app
