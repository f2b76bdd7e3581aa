import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "First run: create an admin user and an API token, print them and keep them in var/."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        credentials = settings.VAR_DIR / "admin-credentials.txt"
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            if credentials.exists():
                self.stdout.write(f"Admin credentials: {credentials}")
            return
        password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
        token = Token.objects.create(user=user)
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        credentials.touch(mode=0o600)
        credentials.write_text(f"username: {username}\npassword: {password}\napi token: {token.key}\n")
        self.stdout.write(
            self.style.SUCCESS(
                f"Created admin user {username!r} with password {password}\n"
                f"API token: {token.key}\n(also kept in {credentials})"
            )
        )
