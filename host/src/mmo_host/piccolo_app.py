from pathlib import Path

from piccolo.conf.apps import AppConfig

from mmo_host.tables import ALL_TABLES

APP_CONFIG = AppConfig(
    app_name="mmo",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=list(ALL_TABLES),
    migration_dependencies=[],
)
