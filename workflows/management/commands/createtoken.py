from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Print USER's API token, creating it if needed; --rotate replaces it, --revoke deletes it. "
        "The token goes to standard output only, never to the logs."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--rotate", action="store_true", help="replace the token: the old one stops working"
        )
        action.add_argument(
            "--revoke", action="store_true", help="delete the token: API calls with it get 401"
        )

    def handle(self, *args, username, rotate, revoke, **options):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        if revoke or rotate:
            deleted, _ = Token.objects.filter(user=user).delete()
            if revoke:
                self.stdout.write(
                    f"token of {username!r} revoked" if deleted else f"{username!r} had no token"
                )
                return
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
