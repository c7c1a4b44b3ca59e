"""A real SMTP server for the tests (aiosmtpd): STARTTLS, implicit TLS or plain, with AUTH.

Each received message is appended as one JSON line to --out: envelope sender, envelope
recipients (BCC included, as a real server sees them), the raw message, and whether the session
was encrypted and authenticated. Prints READY when it accepts connections.
"""
import argparse
import json
import signal
import ssl
import threading
import logging

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--mode", choices=["starttls", "tls", "plain"], default="starttls")
parser.add_argument("--cert")
parser.add_argument("--key")
parser.add_argument("--user")
parser.add_argument("--password")
parser.add_argument("--out", required=True)
args = parser.parse_args()
# aiosmtpd logs a deprecation notice from its own AUTH code on every login.
logging.getLogger("mail.log").setLevel(logging.ERROR)


class Recorder:
    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "encrypted": server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
        }
        with open(args.out, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        return "250 2.0.0 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == args.user
        and auth_data.password.decode() == args.password
    )
    return AuthResult(success=ok, handled=False)


context = None
if args.mode != "plain":
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)

kwargs = dict(hostname="127.0.0.1", port=args.port)
if args.user:
    # With implicit TLS the whole session is encrypted, but aiosmtpd only counts STARTTLS as TLS
    # for its auth_require_tls check.
    kwargs.update(authenticator=authenticate, auth_require_tls=args.mode == "starttls", auth_required=True)
if args.mode == "starttls":
    kwargs.update(tls_context=context, require_starttls=True)
elif args.mode == "tls":
    kwargs.update(ssl_context=context)

controller = Controller(Recorder(), **kwargs)
controller.start()
print("READY", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
controller.stop()
