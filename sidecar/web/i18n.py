"""The pages' words in German and English, chosen from ``Accept-Language``."""

from __future__ import annotations

from sidecar.config.settings import LANGUAGES, Language

TEXTS: dict[Language, dict[str, str]] = {
    "en": {
        "login.title": "Log in",
        "login.heading": "Log in to join the lesson",
        "login.room": "Meeting room: {room}",
        "login.intro": "Use your school account.",
        "login.username": "User name",
        "login.password": "Password",
        "login.submit": "Log in",
        "login.invalid": "The user name or the password is wrong.",
        "login.missing": "Please enter your user name and your password.",
        "login.expired": "The login form had expired. Please try again.",
        "login.no_role": "Your account is neither a teacher's nor a pupil's account, "
        "so it cannot join lessons.",
        "banned.title": "Please wait",
        "banned.heading": "Too many failed attempts",
        "banned.text": "Please try again in {minutes} minutes.",
        "banned.text_one": "Please try again in a minute.",
        "unavailable.title": "Directory unreachable",
        "unavailable.heading": "The school directory is unreachable",
        "unavailable.text": "Logins cannot be checked right now because the school's user "
        "directory does not answer. Your password was not rejected: please try again "
        "in a minute.",
        "retry": "Try again",
        "challenge.title": "Login required",
        "challenge.heading": "Login required",
        "challenge.text": "This meeting is only open to members of the school. "
        "Please log in with your school account.",
        "forbidden.title": "No access",
        "forbidden.heading": "No access to lessons",
        "forbidden.text": "You are logged in, but your account is neither a teacher's nor "
        "a pupil's account, so it cannot join lessons. If you think this is wrong, "
        "please contact the school's administration.",
        "not-a-room.title": "Not a meeting room",
        "not-a-room.heading": "Not a meeting room",
        "not-a-room.text": "This address does not name a meeting room. "
        "Please check the link you were given.",
        "start": "Start page",
        "logout.title": "Log out",
        "logout.heading": "Log out",
        "logout.question": "Do you want to log out of all lessons in this browser?",
        "logout.submit": "Log out",
        "logout.expired": "The form had expired. Please press the button again.",
        "logged_out.title": "Logged out",
        "logged_out.heading": "You are logged out",
        "logged_out.text": "You are logged out. To join a lesson again, open its link and log in.",
        "logged_out.login": "Log in again",
        "logged_in_as": "Logged in as {name}",
        "error.title": "Something went wrong",
        "error.heading": "Something went wrong",
        "error.text": "The request could not be handled. Please try again.",
        "waiting.title": "Waiting for the teacher",
        "waiting.heading": "The lesson has not started yet",
        "waiting.text": "You will be let in as soon as your teacher has opened the lesson.",
        "waiting.checks": "This page checks again by itself every few seconds. Just keep it open.",
        "waiting.now": "Check now",
        "start.title": "Lessons",
        "start.heading": "Lessons",
        "start.you": "Logged in as {name} ({role}).",
        "start.figures": "Right now: {conferences} lessons with {participants} participants.",
        "start.figures_unknown": "Right now: unknown (the videobridge does not answer).",
        "start.room_label": "Room",
        "start.go": "Go to the room",
        "start.not_a_room": "That is not a room name. Please check it.",
        "start.open_browser": "Open in the browser",
        "start.open_app": "Open in the {app} app",
        "start.ios": "iPhone / iPad",
        "start.android": "Android",
        "start.copy_label": "Link for the app (to paste into it)",
        "start.copy_warning": "This link carries your name and your rights in the lesson: "
        "do not pass it on.",
        "start.waiting": "The lesson has not started yet. The links for the app appear "
        "here once your teacher has opened it; in the browser you can wait in the room.",
        "start.logout": "Log out",
        "guest.title": "Invitation",
        "guest.heading": "You are invited to a lesson",
        "guest.invited_by": "Invited by {name},",
        "guest.until": "valid until {until}.",
        "guest.name": "Your name",
        "guest.name_hint": "Shown to everybody in the lesson, marked as a guest.",
        "guest.enter": "Join as a guest",
        "guest.name_wrong": (
            "Please enter your name: at most 64 characters, with a letter or digit "
            "and nothing invisible."
        ),
        "guest.suffix": "(guest)",
        "guest.logged_in": "You are logged in as {name}. To join as a guest, log out first.",
        "guest.links_heading": "Guest links",
        "guest.days": "Valid for how many days (at most {max})",
        "guest.create": "Create a guest link",
        "guest.link_for": "Guest link for {room}",
        "guest.withdraw": "Withdraw",
        "guest.altered": "This invitation link is not valid. Please check that it was copied "
        "completely.",
        "guest.expired": "This invitation has expired. Please ask for a new one.",
        "guest.withdrawn": "This invitation has been withdrawn.",
        "guest-invalid.title": "Invitation not valid",
        "guest-invalid.heading": "The invitation is not valid",
        "guest-invalid.text": "This invitation is no longer valid. Please ask for a new one.",
        "wrong-room.title": "Another room",
        "wrong-room.heading": "Your invitation is for another room",
        "wrong-room.text": "Your invitation is for the room {room}.",
        "wrong-room.text_unknown": "Your invitation is for another room.",
        "wrong-room.go": "Go to that room",
        "guest-home.title": "Invitation",
        "guest-home.heading": "You are a guest",
        # State that could not be written (a full or read-only disk): said, not hidden.
        "guest.back": "Back to the guest links",
        "guest-not-created.title": "Not created",
        "guest-not-created.heading": "The guest link was not created",
        "guest-not-created.text": "The login service could not save the new link (its disk "
        "may be full), so there is none. Please try again in a moment; if it keeps failing, "
        "tell the school's admin.",
        "guest-not-withdrawn.title": "Not withdrawn",
        "guest-not-withdrawn.heading": "The guest link was not withdrawn",
        "guest-not-withdrawn.text": "The login service could not save the withdrawal (its "
        "disk may be full): the link still works. Please try again in a moment; if it keeps "
        "failing, tell the school's admin.",
        "logged_out_unsaved.title": "Logged out here only",
        "logged_out_unsaved.heading": "Logged out in this browser only",
        "logged_out_unsaved.text": "This browser is logged out. But the login service could "
        "not save the logout (its disk may be full): a copy of your login elsewhere might work "
        "again once the service restarts. Please tell the school's admin.",
    },
    "de": {
        "login.title": "Anmelden",
        "login.heading": "Anmelden, um am Unterricht teilzunehmen",
        "login.room": "Besprechungsraum: {room}",
        "login.intro": "Bitte mit dem Schulkonto anmelden.",
        "login.username": "Benutzername",
        "login.password": "Passwort",
        "login.submit": "Anmelden",
        "login.invalid": "Benutzername oder Passwort ist falsch.",
        "login.missing": "Bitte Benutzername und Passwort eingeben.",
        "login.expired": "Das Anmeldeformular war abgelaufen. Bitte noch einmal versuchen.",
        "login.no_role": "Dieses Konto gehört weder einer Lehrkraft noch einer Schülerin "
        "oder einem Schüler und kann daher nicht am Unterricht teilnehmen.",
        "banned.title": "Bitte warten",
        "banned.heading": "Zu viele Fehlversuche",
        "banned.text": "Bitte in {minutes} Minuten noch einmal versuchen.",
        "banned.text_one": "Bitte in einer Minute noch einmal versuchen.",
        "unavailable.title": "Verzeichnis nicht erreichbar",
        "unavailable.heading": "Das Schulverzeichnis ist nicht erreichbar",
        "unavailable.text": "Anmeldungen können gerade nicht geprüft werden, weil das "
        "Benutzerverzeichnis der Schule nicht antwortet. Das Passwort wurde nicht "
        "abgelehnt: Bitte in einer Minute noch einmal versuchen.",
        "retry": "Noch einmal versuchen",
        "challenge.title": "Anmeldung nötig",
        "challenge.heading": "Anmeldung nötig",
        "challenge.text": "Dieser Unterricht ist nur für Mitglieder der Schule. "
        "Bitte mit dem Schulkonto anmelden.",
        "forbidden.title": "Kein Zugang",
        "forbidden.heading": "Kein Zugang zum Unterricht",
        "forbidden.text": "Die Anmeldung hat geklappt, aber dieses Konto gehört weder einer "
        "Lehrkraft noch einer Schülerin oder einem Schüler und kann daher nicht am "
        "Unterricht teilnehmen. Falls das ein Irrtum ist, bitte an die Schulverwaltung "
        "wenden.",
        "not-a-room.title": "Kein Besprechungsraum",
        "not-a-room.heading": "Kein Besprechungsraum",
        "not-a-room.text": "Diese Adresse nennt keinen Besprechungsraum. "
        "Bitte den erhaltenen Link prüfen.",
        "start": "Startseite",
        "logout.title": "Abmelden",
        "logout.heading": "Abmelden",
        "logout.question": "Von allen Unterrichtsräumen in diesem Browser abmelden?",
        "logout.submit": "Abmelden",
        "logout.expired": "Das Formular war abgelaufen. Bitte den Knopf noch einmal drücken.",
        "logged_out.title": "Abgemeldet",
        "logged_out.heading": "Abgemeldet",
        "logged_out.text": "Die Abmeldung hat geklappt. Um wieder am Unterricht "
        "teilzunehmen, den Link des Raums öffnen und anmelden.",
        "logged_out.login": "Wieder anmelden",
        "logged_in_as": "Angemeldet als {name}",
        "error.title": "Etwas ist schiefgegangen",
        "error.heading": "Etwas ist schiefgegangen",
        "error.text": "Die Anfrage konnte nicht bearbeitet werden. Bitte noch einmal versuchen.",
        "waiting.title": "Warten auf die Lehrkraft",
        "waiting.heading": "Der Unterricht hat noch nicht begonnen",
        "waiting.text": "Du wirst hereingelassen, sobald deine Lehrkraft den Unterricht "
        "eröffnet hat.",
        "waiting.checks": "Diese Seite prüft alle paar Sekunden von selbst. Einfach offen lassen.",
        "waiting.now": "Jetzt prüfen",
        "start.title": "Unterricht",
        "start.heading": "Unterricht",
        "start.you": "Angemeldet als {name} ({role}).",
        "start.figures": "Gerade: {conferences} Räume mit {participants} Teilnehmenden.",
        "start.figures_unknown": "Gerade: unbekannt (die Videobridge antwortet nicht).",
        "start.room_label": "Raum",
        "start.go": "Zum Raum",
        "start.not_a_room": "Das ist kein Raumname. Bitte prüfen.",
        "start.open_browser": "Im Browser öffnen",
        "start.open_app": "In der App {app} öffnen",
        "start.ios": "iPhone / iPad",
        "start.android": "Android",
        "start.copy_label": "Link für die App (zum Einfügen)",
        "start.copy_warning": "Dieser Link trägt deinen Namen und deine Rechte im Unterricht: "
        "nicht weitergeben.",
        "start.waiting": "Der Unterricht hat noch nicht begonnen. Die Links für die App "
        "erscheinen hier, sobald deine Lehrkraft ihn eröffnet hat; im Browser kannst du im "
        "Raum warten.",
        "start.logout": "Abmelden",
        "guest.title": "Einladung",
        "guest.heading": "Einladung zum Unterricht",
        "guest.invited_by": "Eingeladen von {name},",
        "guest.until": "gültig bis {until}.",
        "guest.name": "Dein Name",
        "guest.name_hint": "Alle im Unterricht sehen ihn, als Gast gekennzeichnet.",
        "guest.enter": "Als Gast teilnehmen",
        "guest.name_wrong": (
            "Bitte einen Namen eingeben: höchstens 64 Zeichen, mit einem Buchstaben "
            "oder einer Ziffer und nichts Unsichtbarem."
        ),
        "guest.suffix": "(Gast)",
        "guest.logged_in": "Du bist als {name} angemeldet. Um als Gast teilzunehmen, bitte "
        "zuerst abmelden.",
        "guest.links_heading": "Gästelinks",
        "guest.days": "Wie viele Tage gültig (höchstens {max})",
        "guest.create": "Gästelink erstellen",
        "guest.link_for": "Gästelink für {room}",
        "guest.withdraw": "Zurückziehen",
        "guest.altered": "Dieser Einladungslink ist ungültig. Bitte prüfen, ob er vollständig "
        "kopiert wurde.",
        "guest.expired": "Diese Einladung ist abgelaufen. Bitte um eine neue bitten.",
        "guest.withdrawn": "Diese Einladung wurde zurückgezogen.",
        "guest-invalid.title": "Einladung ungültig",
        "guest-invalid.heading": "Die Einladung ist nicht gültig",
        "guest-invalid.text": "Diese Einladung gilt nicht mehr. Bitte um eine neue bitten.",
        "wrong-room.title": "Anderer Raum",
        "wrong-room.heading": "Die Einladung gilt für einen anderen Raum",
        "wrong-room.text": "Die Einladung gilt für den Raum {room}.",
        "wrong-room.text_unknown": "Die Einladung gilt für einen anderen Raum.",
        "wrong-room.go": "Zu diesem Raum",
        "guest-home.title": "Einladung",
        "guest-home.heading": "Du bist Gast",
        # State that could not be written (a full or read-only disk): said, not hidden.
        "guest.back": "Zurück zu den Gästelinks",
        "guest-not-created.title": "Nicht erstellt",
        "guest-not-created.heading": "Der Gästelink wurde nicht erstellt",
        "guest-not-created.text": "Der Anmeldedienst konnte den neuen Link nicht speichern "
        "(vielleicht ist sein Speicher voll), deshalb gibt es ihn nicht. Bitte gleich noch "
        "einmal versuchen; wenn es weiter nicht klappt, der Administration der Schule "
        "Bescheid sagen.",
        "guest-not-withdrawn.title": "Nicht zurückgezogen",
        "guest-not-withdrawn.heading": "Der Gästelink wurde nicht zurückgezogen",
        "guest-not-withdrawn.text": "Der Anmeldedienst konnte das Zurückziehen nicht speichern "
        "(vielleicht ist sein Speicher voll): Der Link gilt weiter. Bitte gleich noch einmal "
        "versuchen; wenn es weiter nicht klappt, der Administration der Schule Bescheid sagen.",
        "logged_out_unsaved.title": "Nur hier abgemeldet",
        "logged_out_unsaved.heading": "Nur in diesem Browser abgemeldet",
        "logged_out_unsaved.text": "Dieser Browser ist abgemeldet. Der Anmeldedienst konnte die "
        "Abmeldung aber nicht speichern (vielleicht ist sein Speicher voll): Eine Kopie deiner "
        "Anmeldung anderswo könnte nach einem Neustart des Dienstes wieder gelten. Bitte sag der "
        "Administration der Schule Bescheid.",
    },
}


def choose_language(accept_language: str | None, default: Language) -> Language:
    """The supported language the browser prefers most (RFC 9110 weights)."""
    best: tuple[float, int, Language] | None = None
    refused: set[str] = set()
    for position, item in enumerate((accept_language or "")[:1000].split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().split("-")[0].lower()
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = -1.0  # unreadable: neither wanted nor refused
        if primary in LANGUAGES and weight == 0.0:
            refused.add(primary)
        if primary not in LANGUAGES or not 0.0 < weight <= 1.0:
            continue
        language: Language = "de" if primary == "de" else "en"
        # Highest weight wins; among equal weights, the earlier one.
        candidate = (weight, -position, language)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    if best is not None:
        return best[2]
    if default in refused:
        # "Anything but the default" (q=0): the other language, then.
        return next((language for language in LANGUAGES if language not in refused), default)
    return default


class Translator:
    """``t("key", name=...)`` in one language."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self._texts = TEXTS[language]

    def __call__(self, key: str, **values: object) -> str:
        return self._texts[key].format(**values)
