"""Failed sign-ins limited per account and per address, for every login form: the admin's, the
browsable API's (/api-auth/login/) and the dashboard's (its LoginView takes
`authentication_form=RateLimitedAuthenticationForm`).

Each wrong password counts against the account name typed (LOGIN_FAILURES_PER_USER) and the
client's address (LOGIN_FAILURES_PER_ADDRESS), in Redis, shared by every process. Once either is
spent, the form refuses before checking the password, the right one included, until the window
resets: a password cannot be guessed faster than the limit, at the price that someone who knows
an account name can keep its owner out (per account) while they keep failing. Counting fails
open when Redis is unreachable (`workflows.request_limits`).
"""

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from workflows import request_limits
from workflows.request_limits import Limit

TOO_MANY_FAILURES = "Too many failed sign-ins for this account or address; try again in %(seconds)d seconds."


class SignInLimits:
    """A login form's `clean()`, refusing a spent account or address and counting wrong passwords."""

    def clean(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if username is None or not password:
            return super().clean()  # nothing to check: the form says what is missing
        limits = sign_in_limits(username, self.request)
        spent = [tally for tally in request_limits.peek(limits) or () if tally.spent]
        if spent:
            raise ValidationError(
                TOO_MANY_FAILURES,
                code="too_many_failed_sign_ins",
                params={"seconds": max(tally.retry_after for tally in spent)},
            )
        try:
            return super().clean()
        except ValidationError:
            if self.user_cache is None:  # a wrong password, not an inactive or non-staff account
                request_limits.hit(limits)
            raise


class RateLimitedAuthenticationForm(SignInLimits, AuthenticationForm):
    """Django's login form, with failed sign-ins limited per account and per address."""


class RateLimitedAdminAuthenticationForm(SignInLimits, AdminAuthenticationForm):
    """The admin's login form (staff only), with failed sign-ins limited per account and per address."""


def sign_in_limits(username: str, request) -> list[Limit]:
    """The limits a sign-in as `username` from `request` counts against (those with a rate)."""
    limits = []
    per_account = request_limits.rate(settings.LOGIN_FAILURES_PER_USER)
    if per_account:
        limits.append(Limit("login_account", request_limits.account_subject(username), per_account))
    per_address = request_limits.rate(settings.LOGIN_FAILURES_PER_ADDRESS)
    if per_address and request is not None:
        limits.append(Limit("login_address", request_limits.address_subject(request), per_address))
    return limits
