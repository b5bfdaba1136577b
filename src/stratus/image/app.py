"""stratus-image: builds the image ASGI app from configuration and runs it.

At start the service recovers from an unclean stop (see transfer.recover):
uploads whose process died go back to ``queued``, their temporary files and
any blob no image refers to are removed.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette

from stratus.common.app import Router, create_app, run_service, setup_logging
from stratus.common.auth import AuthContext, RemoteTokenValidator
from stratus.common.config import Config, ConfigError
from stratus.common.db import Database
from stratus.common.errors import glance_error
from stratus.image import transfer, views
from stratus.image.api import (
    image_data,
    images,
    info,
    members,
    metadefs,
    schemas,
    tags,
    tasks,
    versions,
)
from stratus.image.core import ImageService, Settings
from stratus.image.inspect import Limits
from stratus.image.objectstore import ObjectStore
from stratus.image.store import BlobStore, FileStore

SECTION = "image"


def _formats(config: Config, key: str, allowed: tuple[str, ...]) -> list[str]:
    values = [v.strip() for v in config.get(SECTION, key).split(",") if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ConfigError(
            f"setting [{SECTION}] {key}={config.get(SECTION, key)!r}: use a comma-separated "
            f"subset of {', '.join(allowed)}"
        )
    return values


def settings_from(config: Config) -> Settings:
    cpu = config.get_int(SECTION, "inspect_cpu_seconds", minimum=1)
    return Settings(
        max_image_size=config.get_int(SECTION, "max_image_size", minimum=1),
        quota_images_per_project=config.get_int(SECTION, "quota_images_per_project", minimum=0),
        quota_bytes_per_project=config.get_int(SECTION, "quota_bytes_per_project", minimum=0),
        disk_formats=_formats(config, "disk_formats", views.ALL_DISK_FORMATS),
        container_formats=_formats(config, "container_formats", views.ALL_CONTAINER_FORMATS),
        limits=Limits(
            qemu_img=config.get(SECTION, "qemu_img"),
            cpu_seconds=cpu,
            memory_bytes=config.get_int(SECTION, "inspect_memory_mb", minimum=64) * 1024 * 1024,
            timeout=float(cpu * 4 + 30),
        ),
    )


def build_store(config: Config) -> BlobStore:
    """The store ``[image] store`` names: ``file`` (images_dir) or ``object`` (object
    storage, uploads staged in images_dir/tmp)."""
    kind = config.get(SECTION, "store")
    if kind == "file":
        return FileStore(config.get(SECTION, "images_dir"))
    if kind != "object":
        raise ConfigError(f"setting [{SECTION}] store={kind!r}: use file or object")
    missing = [k for k in ("object_url", "username", "password") if not config.get(SECTION, k)]
    if missing:
        raise ConfigError(f"setting [{SECTION}] store=object needs [{SECTION}] "
                          f"{', '.join(missing)} (the object store and the service user)")
    return ObjectStore.from_settings(
        config.get(SECTION, "images_dir"), config.get(SECTION, "object_url"),
        config.get(SECTION, "identity_url"), config.get(SECTION, "username"),
        config.get(SECTION, "password"), config.get(SECTION, "project_name"),
        config.get(SECTION, "object_container"))


def build_image_service(config: Config) -> ImageService:
    return ImageService(
        Database(config.get(SECTION, "database_url"), "image"),
        build_store(config),
        settings_from(config),
    )


def build_app(
    service: ImageService,
    authenticate: Callable[[str], AuthContext],
    public_url: str = "",
) -> Starlette:
    """The image app: every API module's routes bound to ``service``; ``authenticate``
    turns an X-Auth-Token into the caller (a remote identity check in production)."""
    router = Router(authenticate=authenticate)
    for module in (versions, images, tags, members, image_data, schemas, tasks, metadefs,
                   info):
        router.include(module.routes, service)
    return create_app("image", router.routes, glance_error, db=service.db, public_url=public_url)


def create_app_from_config() -> Starlette:
    """uvicorn factory: reads the configuration named by STRATUS_CONFIG_FILE."""
    config = Config.load()
    setup_logging(config.get_bool("DEFAULT", "debug"))
    service = build_image_service(config)
    transfer.recover(service)
    validator = RemoteTokenValidator(
        config.get(SECTION, "identity_url"),
        cache_seconds=config.get_int("identity", "token_cache_seconds", minimum=0),
    )
    return build_app(service, validator.validate, config.get(SECTION, "public_url"))


def main(argv: list[str] | None = None) -> int:
    return run_service("stratus-image", __doc__, SECTION,
                       "stratus.image.app:create_app_from_config", settings_from, argv)
