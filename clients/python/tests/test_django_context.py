"""Django: requests through timetrail.django.middleware.ContextMiddleware whose views write
through models (ENGINE timetrail.django.db, and a plain ENGINE with timetrail.django.install())
are captured by a real `timetrail serve --capture` with the request's actor and request_id.
Runs under tests/support/with_postgres.sh (CTest: python_orm_context)."""

from __future__ import annotations

import json
import threading
import unittest
import uuid
from typing import Any

import django
from django.conf import settings

import timetrail
from capture_fixture import Capture, pg_settings, stream

pg = pg_settings()
database = {"NAME": pg["dbname"], "USER": pg["user"], "HOST": pg["host"], "PORT": pg["port"]}
settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["testserver"],
    SECRET_KEY="test only",
    DATABASES={"default": {"ENGINE": "timetrail.django.db", **database},
               # a project that keeps Django's own ENGINE: timetrail.django.install()
               "plain": {"ENGINE": "django.db.backends.postgresql", **database}},
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    MIDDLEWARE=[__name__ + ".LoginFromHeader", "timetrail.django.middleware.ContextMiddleware"],
    ROOT_URLCONF=__name__,
    USE_TZ=True,
)
django.setup()

from django.contrib.auth.models import AnonymousUser, User  # noqa: E402 - after setup()
from django.db import connections, models, transaction  # noqa: E402
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

import timetrail.django  # noqa: E402


class Order(models.Model):
    status = models.TextField()
    note = models.TextField(null=True)

    class Meta:
        app_label = "shop"
        managed = False
        db_table = "dj_orders"


class LoginFromHeader:
    """Stands in for AuthenticationMiddleware: the user named by X-Test-User (none: anonymous)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        name = request.headers.get("X-Test-User")
        request.user = User(username=name) if name else AnonymousUser()
        return self.get_response(request)


def pay(request: Any, key: int) -> Any:
    """Autocommit save(), QuerySet.update(), bulk_create(), delete() and raw SQL."""
    order = Order.objects.get(pk=key)
    order.status = "paid"
    order.save()
    Order.objects.filter(id__in=[key, key + 1]).update(note="50% paid")
    Order.objects.bulk_create([Order(id=key + 2, status="new"), Order(id=key + 3, status="new")])
    Order.objects.filter(id=key + 3).delete()
    with connections["default"].cursor() as cur:
        cur.execute("UPDATE dj_orders SET status = 'raw' WHERE id = %s", [key + 2])
        cur.executemany("UPDATE dj_orders SET note = %s WHERE id = %s", [("many", key + 2)])
    return JsonResponse(timetrail.current_context())


def plain(request: Any, key: int) -> Any:
    Order.objects.using("plain").filter(id=key).update(status="via plain")
    return HttpResponse("ok")


def stream_body(request: Any, key: int) -> Any:
    def chunks() -> Any:
        yield "started\n"
        Order.objects.filter(id=key).update(status="streamed")
        yield json.dumps(timetrail.current_context())
    return StreamingHttpResponse(chunks())


urlpatterns = [path("pay/<int:key>", pay), path("plain/<int:key>", plain),
               path("stream/<int:key>", stream_body)]


def custom_context(request: Any) -> dict:
    return {"actor": "svc:" + request.headers.get("X-Service", "?"), "reason": "batch"}


capture: Capture


def setUpModule() -> None:
    global capture
    capture = Capture("py_django")
    capture.table("dj_orders", "id serial PRIMARY KEY, status text, note text")
    timetrail.django.install()


def tearDownModule() -> None:
    connections.close_all()
    capture.stop()


def orders(key: int) -> str:
    return stream("dj_orders", key)


class DjangoContextTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = Client()

    def tearDown(self) -> None:
        self.assertEqual(timetrail.current_context(), {})

    def seed(self, *keys: int) -> None:
        Order.objects.bulk_create([Order(id=k, status="new") for k in keys])  # no context

    def test_request_through_the_middleware(self) -> None:
        self.seed(100, 101)
        response = self.client.get("/pay/100", HTTP_X_TEST_USER="alice",
                                   HTTP_X_REQUEST_ID="req-7")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"actor": "alice", "request_id": "req-7"})

        def who(key: int, count: int) -> list:
            return [(e["metadata"].get("actor"), e["metadata"].get("request_id"))
                    for e in capture.events(orders(key), count)]

        alice = ("alice", "req-7")
        self.assertEqual(who(100, 3), [(None, None), alice, alice])  # seed, save(), update()
        self.assertEqual(capture.events(orders(100), 3)[2]["data"], {"note": "50% paid"})
        self.assertEqual(who(101, 2), [(None, None), alice])         # update()
        self.assertEqual(who(102, 3), [alice, alice, alice])  # bulk_create(), raw SQL twice
        self.assertEqual([e["data"] for e in capture.events(orders(102), 3)[1:]],
                         [{"status": "raw"}, {"note": "many"}])
        self.assertEqual(who(103, 2), [alice, alice])                # bulk_create(), delete()

        # Anonymous, no X-Request-Id: no actor, a generated request_id.
        self.seed(110, 111)
        response = self.client.get("/pay/110")
        self.assertEqual(response.status_code, 200)
        metadata = capture.events(orders(112), 1)[0]["metadata"]
        self.assertNotIn("actor", metadata)
        self.assertEqual(metadata["request_id"], str(uuid.UUID(metadata["request_id"])))

    def test_timetrail_context_setting(self) -> None:
        self.seed(120, 121)
        with override_settings(TIMETRAIL_CONTEXT=__name__ + ".custom_context"):
            client = Client()  # the middleware reads the setting when the handler loads it
            client.get("/pay/120", HTTP_X_TEST_USER="alice", HTTP_X_SERVICE="billing")
        metadata = capture.events(orders(120), 2)[1]["metadata"]
        self.assertEqual((metadata["actor"], metadata["reason"]), ("svc:billing", "batch"))
        uuid.UUID(metadata["request_id"])

    def test_install_on_a_plain_engine(self) -> None:
        self.seed(130, 131)
        self.client.get("/plain/130", HTTP_X_TEST_USER="bob")
        event = capture.events(orders(130), 2)[1]
        self.assertEqual((event["metadata"]["actor"], event["data"]),
                         ("bob", {"status": "via plain"}))

        # Another thread has connections of its own, opened after install(): the
        # connection_created signal wraps them.
        def other_thread() -> None:
            with timetrail.context(actor="worker"):
                Order.objects.using("plain").filter(id=131).update(status="from a thread")
            connections.close_all()

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        event = capture.events(orders(131), 2)[1]
        self.assertEqual((event["metadata"]["actor"], event["data"]),
                         ("worker", {"status": "from a thread"}))

    def test_explicit_set_context_wins_in_its_transaction(self) -> None:
        self.seed(150)
        with timetrail.context(actor="from-comment"):
            with transaction.atomic():
                with connections["default"].cursor() as cur:
                    cur.execute("SELECT timetrail.set_context(%s::jsonb)",
                                [json.dumps({"actor": "explicit", "reason": "by hand"})])
                Order.objects.filter(id=150).update(status="explicit")
            Order.objects.filter(id=150).update(status="commented")  # autocommit
        first, second = [e["metadata"] for e in capture.events(orders(150), 3)[1:]]
        self.assertEqual((first["actor"], first["reason"]), ("explicit", "by hand"))
        self.assertEqual(second["actor"], "from-comment")
        self.assertNotIn("reason", second)

    def test_streamed_response(self) -> None:
        self.seed(140)
        response = self.client.get("/stream/140", HTTP_X_TEST_USER="carol")
        body = b"".join(response.streaming_content).decode()
        self.assertEqual(json.loads(body.split("\n", 1)[1])["actor"], "carol")
        self.assertEqual(capture.events(orders(140), 2)[1]["metadata"]["actor"], "carol")


if __name__ == "__main__":
    unittest.main()
