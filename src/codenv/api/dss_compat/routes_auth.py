"""`GET /auth/info` (§2.3, §4.5): who the token is, what `client.get_auth_info()` returns."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from codenv.api.dss_compat.deps import DssCaller

router = APIRouter()
# DSS's profile of a user who may work on code envs; codenv has no profiles (its rights
# come from groups, reported under `codenv`).
PROFILE = "DATA_SCIENTIST"


@router.get("/auth/info")
def auth_info(call: DssCaller, withSecrets: bool = False) -> dict[str, Any]:
    """`secrets` is always empty: codenv keeps no per-user secrets to hand out."""
    actor = call.actor
    return {
        "authIdentifier": actor.name,
        "groups": sorted(actor.groups),
        "userProfile": PROFILE,
        "secrets": [],
        "codenv": {
            "isAdmin": actor.is_admin,
            "mayCreateCodeEnvs": actor.may_create,
            "mayManageCodeEnvs": actor.may_manage_all,
        },
    }
