"""The peer `make bench` compares against: Django's own password-reset and login views under
gunicorn, with SQLite, the file email backend and Argon2id at Latchkey's parameters.

`DjangoPeer(folder, iterations, memory_mib).start()` writes a one-module project into
`folder`, migrates, creates one user, starts gunicorn (2 workers, one per core) on 127.0.0.1,
and offers the same requests the benchmark sends Latchkey: the reset-link GET, the forgot POST
for a known and an unknown address, the login POST, an API look-up of a person by email with a
bearer key, and a Stripe event verified by Stripe's own library and recorded once. Django's views check CSRF, so the
POSTs carry a token and cookie fetched once from the form, as a browser's would. `stop()`
ends gunicorn.
"""
from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

SETTINGS = '''
from pathlib import Path
from django.contrib.auth.hashers import Argon2PasswordHasher

HERE = Path(__file__).resolve().parent
SECRET_KEY = "peer-benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "django.middleware.csrf.CsrfViewMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware"]
ROOT_URLCONF = "peer"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": str(HERE / "peer.sqlite3"),
                         "OPTIONS": {{"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
                                      "timeout": 5}}}}}}
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [str(HERE / "templates")]}}]
EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = str(HERE / "mail")
DEFAULT_FROM_EMAIL = "no-reply@example.com"
LOGIN_REDIRECT_URL = "/members/"
USE_TZ = True


class SameArgon2id(Argon2PasswordHasher):
    """Argon2id at Latchkey's configured cost."""
    time_cost = {iterations}
    memory_cost = {memory_kib}
    parallelism = 1


PASSWORD_HASHERS = ["settings.SameArgon2id"]
'''

URLS = '''
import hashlib, hmac, json
import stripe
from django.contrib.auth import views
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

API_KEY_HASH = hmac.new(b"peer-benchmark-only", b"@API_KEY@", hashlib.sha256).digest()
STRIPE_SECRET = "@STRIPE_SECRET@"


def person(request):
    """GET /api/people?email=E: a bearer key checked by its keyed hash, then the person as JSON."""
    key = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not hmac.compare_digest(hmac.new(b"peer-benchmark-only", key.encode(), hashlib.sha256).digest(), API_KEY_HASH):
        return JsonResponse({"status": 401, "title": "Unauthorized"}, status=401, content_type="application/problem+json")
    user = User.objects.filter(email=request.GET.get("email", "")).first()
    if user is None:
        return JsonResponse({"status": 404, "title": "Not Found"}, status=404, content_type="application/problem+json")
    return JsonResponse({"id": user.pk, "email": user.email, "name": user.get_full_name(), "created_at": user.date_joined.isoformat(),
                         "last_login_at": user.last_login.isoformat() if user.last_login else None, "access": []})


@csrf_exempt
def stripe_event(request):
    """POST /stripe: the official library verifies the signature; each event id is worked once."""
    try:
        event = stripe.Webhook.construct_event(request.body, request.headers.get("Stripe-Signature", ""), STRIPE_SECRET)
    except (ValueError, stripe.SignatureVerificationError):
        return HttpResponse(status=400)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS stripe_event (id TEXT PRIMARY KEY)")
        cursor.execute("INSERT OR IGNORE INTO stripe_event (id) VALUES (%s)", [event["id"]])
    return JsonResponse({"received": True})


urlpatterns = [
    path("api/people", person),
    path("stripe", stripe_event),
    path("forgot", views.PasswordResetView.as_view(success_url="/forgot-sent")),
    path("forgot-sent", lambda request: HttpResponse("sent")),
    path("reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(success_url="/reset-done")),
    path("login", views.LoginView.as_view()),
]
'''

TEMPLATES = {
    "registration/password_reset_form.html": "<form method=post>{% csrf_token %}{{ form }}</form>",
    "registration/password_reset_email.html": "Reset: {{ protocol }}://{{ domain }}/reset/{{ uid }}/{{ token }}/",
    "registration/password_reset_subject.txt": "Reset your password",
    "registration/password_reset_confirm.html": "<form method=post>{% csrf_token %}{{ form }}</form>",
    "registration/login.html": "<form method=post>{% csrf_token %}{{ form }}</form>",
}

SETUP = '''
import django, os, sys
django.setup()
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
user = User.objects.create_user("known", "known@example.com", "bench-password-1")
print(urlsafe_base64_encode(force_bytes(user.pk)) + "/" + default_token_generator.make_token(user))
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DjangoPeer:
    """One Django project and its gunicorn, in `folder`."""

    def __init__(self, folder: Path, iterations: int, memory_mib: int, api_key: str = "", stripe_secret: str = ""):
        self.folder = Path(folder)
        self.iterations, self.memory_kib = iterations, memory_mib * 1024
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.reset_path = ""
        self.csrf_cookie = self.csrf_token = ""
        self.api_key, self.stripe_secret = api_key, stripe_secret

    def env(self) -> dict:
        return dict(os.environ, PYTHONPATH=str(self.folder), DJANGO_SETTINGS_MODULE="settings")

    def start(self) -> "DjangoPeer":
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "settings.py").write_text(SETTINGS.format(iterations=self.iterations, memory_kib=self.memory_kib))
        (self.folder / "peer.py").write_text(URLS.replace("@API_KEY@", self.api_key).replace("@STRIPE_SECRET@", self.stripe_secret))
        (self.folder / "wsgi_app.py").write_text("from django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n")
        for name, text in TEMPLATES.items():
            (self.folder / "templates" / name).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / "templates" / name).write_text(text)
        (self.folder / "mail").mkdir(exist_ok=True)
        run = lambda *args: subprocess.run([sys.executable, *args], cwd=self.folder, env=self.env(),
                                           check=True, capture_output=True, text=True)
        run("-m", "django", "migrate", "--noinput")
        self.reset_path = "/reset/" + run("-c", SETUP).stdout.strip() + "/"
        self.process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{self.port}",
                                         "--log-level", "warning", "wsgi_app:application"],
                                        cwd=self.folder, env=self.env(), stdout=subprocess.DEVNULL,
                                        stderr=open(self.folder / "gunicorn.log", "w"), start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                status, headers, _ = self.request("GET", "/login")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start: " + (self.folder / "gunicorn.log").read_text()[-2000:])
            time.sleep(0.2)
        cookie = next(v for k, v in headers if k.lower() == "set-cookie" and v.startswith("csrftoken="))
        self.csrf_cookie = cookie.split(";")[0]
        _, _, body = self.request("GET", "/forgot", headers={"Cookie": self.csrf_cookie})
        self.csrf_token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
        return self

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def form(self, fields: dict) -> str:
        """A form body carrying the CSRF token, for a POST sent with `self.csrf_cookie`."""
        return urllib.parse.urlencode(dict(fields, csrfmiddlewaretoken=self.csrf_token))

    def sent_mail(self) -> int:
        return sum(1 for _ in (self.folder / "mail").iterdir())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
