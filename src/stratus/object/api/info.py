"""``GET /info``: the cluster's capabilities, without a token (outside ``/v1``)."""

from __future__ import annotations

from typing import Any

from stratus.common.app import Req, Routes
from stratus.object import slo, tempurl
from stratus.object.api import bulk
from stratus.object.core import ObjectService
from stratus.object.views import LIMITS

routes = Routes()


def capabilities(svc: ObjectService) -> dict[str, Any]:
    """What python-swiftclient and Tempest read: the limits and the policies."""
    return {"swift": {**LIMITS, "max_file_size": svc.settings.max_file_size,
                      "container_listing_limit": svc.settings.listing_limit,
                      "account_listing_limit": svc.settings.listing_limit,
                      "version": "2.31.0-stratus",
                      "policies": [{"name": "Policy-0", "default": True}]},
            "container_quotas": {}, "account_quotas": {},
            "slo": {"max_manifest_segments": slo.MAX_SEGMENTS,
                    "max_manifest_size": slo.MAX_MANIFEST_SIZE,
                    "min_segment_size": slo.MIN_SEGMENT_SIZE},
            "bulk_delete": {"max_deletes_per_request": bulk.MAX_DELETES,
                            "max_failed_deletes": bulk.MAX_DELETES},
            "tempurl": {"methods": list(tempurl.METHODS),
                        "allowed_digests": sorted(tempurl.DIGESTS),
                        "incoming_remove_headers": [], "outgoing_remove_headers": []}}


@routes.add(("GET", "HEAD"), "/info")
async def info(req: Req, svc: ObjectService) -> dict[str, Any]:
    return capabilities(svc)
