"""Domain errors. Each carries one sentence a user can read (translated when shown), written in
Telegram HTML: what someone typed is quoted back short and escaped (``excerpt``), names escaped."""

from __future__ import annotations

from html import escape

from bot.i18n import _
from bot.inputs import excerpt


class DomainError(Exception):
    """A refusal with a user-facing explanation; nothing was changed."""

    def user_message(self) -> str:
        return str(self)


class NotFound(DomainError):
    pass


class CaseNotFound(NotFound):
    def __init__(self, case_id: int) -> None:
        super().__init__(case_id)
        self.case_id = case_id

    def user_message(self) -> str:
        return _("There is no case #{n}.").format(n=self.case_id)


class UnitNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def user_message(self) -> str:
        return _("There is no unit with the key “{key}”. /units lists them.").format(key=excerpt(self.key))


class PersonNotFound(NotFound):
    def __init__(self, who: str) -> None:
        super().__init__(who)
        self.who = who

    def user_message(self) -> str:
        return _(
            "I don't know {who} yet: they must first write to me or in their unit's chat."
        ).format(who=excerpt(self.who))


class Forbidden(DomainError):
    def user_message(self) -> str:
        return _("You are not allowed to do that.")


class OwnResolution(Forbidden):
    def user_message(self) -> str:
        return _("Nobody verifies their own resolution: another member of the working group "
                 "or a supervisor must.")


class InvalidTransition(DomainError):
    def __init__(self, case_id: int, status_label: str) -> None:
        super().__init__(case_id, status_label)
        self.case_id = case_id
        self.status_label = status_label

    def user_message(self) -> str:
        return _("That cannot be done now: case #{n} is {status}.").format(
            n=self.case_id, status=escape(self.status_label, quote=False)
        )


class StaleCase(DomainError):
    def __init__(self, case_id: int) -> None:
        super().__init__(case_id)
        self.case_id = case_id

    def user_message(self) -> str:
        return _("This case has changed. Here is its current card.")


class NoChat(DomainError):
    def __init__(self, unit_name: str) -> None:
        super().__init__(unit_name)
        self.unit_name = unit_name

    def user_message(self) -> str:
        return _(
            "{unit} has no bound chat, so the case stays unassigned. "
            "An admin can bind one with /bindchat in the unit's group."
        ).format(unit=escape(self.unit_name, quote=False))


class Invalid(DomainError):
    """Bad input; the message says what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def user_message(self) -> str:
        return self.message


class AlreadyDone(DomainError):
    """The update that asks for this change was handled before: the change is already made."""

    def user_message(self) -> str:
        return _("This was already done: I had recorded it before.")
