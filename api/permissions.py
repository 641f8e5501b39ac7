"""Route permissions: what each role may do, the per-route declaration and the start-up check.

Every API route declares one :class:`Permission` with ``dependencies=[require(...)]``
(``Permission.PUBLIC`` included, so that being public is a decision and not an
omission). :func:`check_route_permissions` runs when the app is built and raises
:class:`UndeclaredPermissionError` if any route lacks one, so the service does
not start.

The three administrator roles share no permission, so none can do another's
job: the system administrator manages accounts and the organisation tree, the
security administrator locks accounts and binds devices, and the audit
administrator reads the operation log.
"""

from collections.abc import Iterable
from enum import StrEnum

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import Mount, Route

from geo.errors import DoorstepError
from store.identity import Role


class Permission(StrEnum):
    """An action a route performs, granted to roles by :data:`ROLE_PERMISSIONS`."""

    PUBLIC = "public"
    SESSION = "session"  # any logged-in account: own session and password
    ANCHOR_READ = "anchor.read"
    ANCHOR_WRITE = "anchor.write"
    ASSISTANCE_LEDGER = "assistance.ledger"
    ANALYTICS_READ = "analytics.read"
    ACCOUNT_ADMIN = "account.admin"
    SECURITY_ADMIN = "security.admin"
    AUDIT_READ = "audit.read"
    API_DOCS = "api.docs"  # the OpenAPI schema in production; public in development
    SEEKER_READ = "seeker.read"  # masked personal information of seekers in scope
    PI_UNMASK = "pi.unmask"  # unmasked personal information of seekers in scope
    SEEKER_DELETE = "seeker.delete"  # erase a seeker in scope from every store and cache
    PUSH_SEEKER = "push.seeker"  # own push consent, inbox and preferences
    SEEKER_SELF = "seeker.self"  # own seeker profile, recommendations and WeChat openid
    PUSH_ADMIN = "push.admin"  # the push dead-letter list
    TOUR_PLAN = "tour.plan"  # recruitment-bus tours and shuttle proposals for own districts


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SEEKER: frozenset({Permission.SESSION, Permission.PUSH_SEEKER, Permission.SEEKER_SELF}),
    Role.STATION_STAFF: frozenset(
        {
            Permission.SESSION,
            Permission.ANCHOR_READ,
            Permission.ANCHOR_WRITE,
            Permission.API_DOCS,
            Permission.SEEKER_READ,
            Permission.TOUR_PLAN,
        }
    ),
    Role.ASSISTANCE_OFFICER: frozenset(
        {
            Permission.SESSION,
            Permission.ANCHOR_READ,
            Permission.ASSISTANCE_LEDGER,
            Permission.API_DOCS,
            Permission.SEEKER_READ,
            Permission.PI_UNMASK,
            Permission.SEEKER_DELETE,
        }
    ),
    Role.ANALYST: frozenset(
        {Permission.SESSION, Permission.ANALYTICS_READ, Permission.API_DOCS, Permission.TOUR_PLAN}
    ),
    Role.SYSTEM_ADMIN: frozenset(
        {Permission.SESSION, Permission.ACCOUNT_ADMIN, Permission.API_DOCS, Permission.PUSH_ADMIN}
    ),
    Role.SECURITY_ADMIN: frozenset({Permission.SESSION, Permission.SECURITY_ADMIN}),
    Role.AUDIT_ADMIN: frozenset({Permission.SESSION, Permission.AUDIT_READ}),
}

# Static file mounts serve only the service's own assets, so they need no login.
PUBLIC_MOUNTS = frozenset(
    {"/assets/leaflet", "/assets/markercluster", "/static", "/assets/swagger-ui"}
)
# Routes FastAPI adds itself that need no permission; api.docs serves the schema itself.
PUBLIC_FRAMEWORK_ROUTES: frozenset[str] = frozenset()


class UndeclaredPermissionError(DoorstepError, RuntimeError):
    """One or more routes declare no permission, so the app must not start."""


def permissions_of(roles: Iterable[Role]) -> frozenset[Permission]:
    """Return the union of the permissions of ``roles``."""
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)


def declared_permission(route: APIRoute) -> Permission | None:
    """Return the permission a route declares through :func:`api.auth.require`, or None."""
    found = [
        getattr(dependency.call, "permission", None) for dependency in route.dependant.dependencies
    ]
    declared = [item for item in found if isinstance(item, Permission)]
    return declared[0] if len(declared) == 1 else None


def api_routes(app: FastAPI, routers: Iterable[APIRouter]) -> list[APIRoute]:
    """Return the app's own API routes and those of the included ``routers``."""
    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    for router in routers:
        routes.extend(route for route in router.routes if isinstance(route, APIRoute))
    return routes


def check_route_permissions(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Raise UndeclaredPermissionError naming every route without exactly one permission."""
    missing = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in api_routes(app, routers)
        if declared_permission(route) is None
    ]
    for route in app.routes:
        if isinstance(route, Mount) and route.path not in PUBLIC_MOUNTS:
            missing.append(f"mount {route.path}")
        elif type(route) is Route and route.path not in PUBLIC_FRAMEWORK_ROUTES:
            missing.append(f"{sorted(route.methods or [])} {route.path}")
    if missing:
        raise UndeclaredPermissionError(
            f"routes without a declared permission: {missing}; add"
            " dependencies=[require(Permission.X)] to each (Permission.PUBLIC if open)"
        )
