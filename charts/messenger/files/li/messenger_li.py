"""The lawful-intercept (LI) Synapse: read-only, and every access on the record.

Shipped in the ConfigMap <release>-synapse-li (templates/li/synapse_li_config.yaml) and put
on synapse-li's PYTHONPATH; no image rebuild. Two parts, written against Synapse v1.164's module
API (docs/modules/spam_checker_callbacks.md, docs/modules/account_validity_callbacks.md) and
request log (synapse/http/site.py, docs/usage/administration/request_log.md):

* ``messenger_li.ReadOnly``, a Synapse module refusing, with 403 M_FORBIDDEN and
  :data:`MESSAGE`, every action that would write history: the third-party-rules callbacks
  ``check_event_allowed`` (every event built here: messages, state, redactions, memberships)
  and ``on_create_room`` hold for server admins too (docs/modules/third_party_rules_callbacks.md);
  the spam-checker callbacks (joins, invites, aliases, directory, uploads) for the others
  (Synapse lets server admins past them). Its ``on_user_login`` callback writes a ``login``
  audit event.
* ``messenger_li.AuditHandler``, a logging handler that log.yaml attaches to Synapse's request
  logger: every request Synapse finishes (client and admin API, logins included) becomes a
  ``request`` audit event.

An audit event is one JSON object on one line of the process's standard output (Synapse
redirects ``sys.stdout`` into its log, so the original stream is used; Synapse's own log goes
to standard error), with ``"audit": "messenger-li"``, ``time`` (UTC, RFC 3339 with
milliseconds), ``event`` and, for ``request``: ``user`` (the authenticated Matrix ID, or
null), ``ip`` (the client address, X-Forwarded-For from the Gateway), ``method``, ``path``
(Synapse redacts access tokens in it), ``status``, ``user_agent``; for ``login``: ``user``,
``auth_provider``.

Standard library only at import time: log.yaml loads the handler before Synapse starts.
"""

import json
import logging
import sys
import time

AUDIT_TAG = "messenger-li"
MESSAGE = "This is the lawful-intercept instance: it is read-only."


def _timestamp(seconds):
    millis = int(seconds * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def write_audit(event, when=None, stream=None, **fields):
    """Writes one audit event as a JSON line (on standard output unless ``stream``)."""
    line = {"audit": AUDIT_TAG, "time": _timestamp(time.time() if when is None else when)}
    line["event"] = event
    line.update(fields)
    out = stream or sys.__stdout__
    out.write(json.dumps(line, sort_keys=True) + "\n")
    out.flush()


# Positions in the request log record's arguments (synapse/http/site.py,
# SynapseRequest._finished_processing at v1.164): client IP, site tag, requester, ... code,
# method, redacted URI, protocol, user agent, event fetches.
_IP, _REQUESTER, _CODE, _METHOD, _URI, _AGENT = 0, 2, 11, 12, 13, 15


class AuditHandler(logging.Handler):
    """Turns Synapse's request log records into ``request`` audit events."""

    def emit(self, record):
        try:
            args = record.args
            if not isinstance(args, tuple) or len(args) <= _AGENT:
                # Not the record shape this handler knows (another Synapse version): the
                # request is still on the record, as Synapse's own message.
                write_audit("request", when=record.created, raw=record.getMessage())
                return
            requester = args[_REQUESTER]
            user = None if requester in (None, "None", "-") else str(requester)
            status = str(args[_CODE])
            write_audit(
                "request",
                when=record.created,
                user=user,
                ip=str(args[_IP]),
                method=str(args[_METHOD]),
                path=str(args[_URI]),
                status=int(status) if status.isdigit() else status,
                user_agent=str(args[_AGENT]),
            )
        except Exception:  # noqa: BLE001 - a logging handler must not raise
            self.handleError(record)


class ReadOnly:
    """Refuses every action that would write room history; audits logins."""

    def __init__(self, config, api):
        self._api = api
        api.register_spam_checker_callbacks(
            check_event_for_spam=self.check_event_for_spam,
            user_may_join_room=self.refuse,
            user_may_invite=self.refuse,
            user_may_send_3pid_invite=self.refuse,
            user_may_create_room=self.refuse,
            user_may_create_room_alias=self.refuse,
            user_may_publish_room=self.refuse,
            check_media_file_for_spam=self.refuse,
        )
        api.register_third_party_rules_callbacks(
            check_event_allowed=self.check_event_allowed,
            on_create_room=self.on_create_room,
        )
        api.register_account_validity_callbacks(on_user_login=self.on_user_login)

    @staticmethod
    def parse_config(config):
        return config or {}

    async def check_event_for_spam(self, event):
        # A string is the client-facing error of a 403 M_FORBIDDEN
        # (synapse/handlers/message.py).
        return MESSAGE

    async def check_event_allowed(self, event, state_events):
        # A SynapseError raised here reaches the client (synapse/module_api/callbacks/
        # third_party_event_rules_callbacks.py).
        await self.refuse()

    async def on_create_room(self, requester, request_content, is_requester_admin):
        await self.refuse()

    async def refuse(self, *args, **kwargs):
        from synapse.module_api.errors import Codes, SynapseError

        raise SynapseError(403, MESSAGE, Codes.FORBIDDEN)

    async def on_user_login(self, user_id, auth_provider_type, auth_provider_id):
        write_audit(
            "login",
            user=user_id,
            auth_provider=auth_provider_id or auth_provider_type,
        )
