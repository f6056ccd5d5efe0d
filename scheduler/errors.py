"""Domain errors.

The hierarchy::

    SchedulerError                 base of everything the domain raises
    ├── NotFound                   404  an id, slug or token that does not exist
    ├── Invalid                    422  bad input; carries a field -> message map
    ├── Conflict                   409  the request clashes with current state
    │   ├── DuplicateRegistration      one active registration per person per session
    │   ├── CapacityBelowConfirmed     lowering a pool below its confirmed count
    │   └── AlreadyExists              a course slug or user that is taken
    ├── Gone                       410  registration closed, session cancelled or past
    ├── PayloadTooLarge            413  a request body over the limit
    ├── Unauthorized               401  missing or bad admin credentials
    ├── RateLimited                429  a client over its attempts per minute (Retry-After)
    └── Unavailable                503  the database cannot be reached right now (Retry-After)

Each error builds its message in ``__init__``; the web layer turns them into the contract's error
shape in one place (``scheduler.web.errors``).
"""

from __future__ import annotations


class SchedulerError(Exception):
    status_code = 400
    code = "error"
    # Seconds after which trying again makes sense; sent as ``Retry-After`` when set.
    retry_after: int | None = None

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})


class NotFound(SchedulerError):
    status_code = 404
    code = "not_found"

    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} {key!s} does not exist")


class Invalid(SchedulerError):
    status_code = 422
    code = "invalid"

    def __init__(self, fields: dict[str, str], message: str | None = None) -> None:
        if message is None:
            names = ", ".join(sorted(fields))
            message = f"invalid input: {names}" if names else "invalid input"
        super().__init__(message, fields)


class Conflict(SchedulerError):
    status_code = 409
    code = "conflict"


class DuplicateRegistration(Conflict):
    code = "duplicate_registration"

    def __init__(self, email: str) -> None:
        super().__init__(
            f"{email} already has an active registration for this session", {"email": "taken"}
        )


class CapacityBelowConfirmed(Conflict):
    code = "capacity_below_confirmed"

    def __init__(self, attendance: str, capacity: int, confirmed: int, *, held: int = 0) -> None:
        field = f"{attendance}_capacity"
        taken = f"{confirmed} confirmed" + (f" and {held} held" if held else "")
        super().__init__(
            f"{attendance} capacity {capacity} is below the {taken} seats",
            {field: f"must be at least {confirmed + held}"},
        )


class AlreadyExists(Conflict):
    code = "already_exists"

    def __init__(self, what: str, key: str, field: str) -> None:
        super().__init__(f"{what} {key} already exists", {field: "taken"})


class Gone(SchedulerError):
    status_code = 410
    code = "gone"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)


class PayloadTooLarge(SchedulerError):
    status_code = 413
    code = "payload_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is over {limit} bytes", {"body": "too large"})


class Unauthorized(SchedulerError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str = "a valid admin token is required") -> None:
        super().__init__(message)


class RateLimited(SchedulerError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"too many attempts: at most {limit} a minute; try again shortly")
        self.retry_after = max(1, retry_after)


class Unavailable(SchedulerError):
    status_code = 503
    code = "unavailable"

    def __init__(self, what: str = "the database", retry_after: int = 5) -> None:
        super().__init__(f"{what} is unavailable right now; please try again shortly")
        self.retry_after = retry_after
