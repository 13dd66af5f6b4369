"""An aiosmtpd handler that stores each message exactly as received, one file per message in a
Maildir (tmp/ then renamed into new/), without parsing it.

aiosmtpd's own Mailbox handler parses every message with Python's email package first, which
caps the server at about 95 messages/s on the CI machine: the benchmark would measure Python,
not the outbox. Used as `python3 -m aiosmtpd -c clinic_smtp_sink.RawMaildir DIR` with this
folder on PYTHONPATH (see smtp.rs).
"""
import os
import uuid


class RawMaildir:
    def __init__(self, path):
        self.path = path
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex
        tmp = os.path.join(self.path, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.path, "new", name))
        return "250 OK"

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("RawMaildir takes one argument: the Maildir's path")
        return cls(args[0])
