"""The pages' words in German and English, chosen from ``Accept-Language``."""

from __future__ import annotations

from sidecar.config.settings import LANGUAGES, Address, Language

TEXTS: dict[Language, dict[str, str]] = {
    "en": {
        "login.title": "Log in",
        "login.heading": "Log in to join the lesson",
        "login.room": "Room: {room}",
        "login.intro": "Use your school account.",
        "login.username": "User name",
        "login.password": "Password",
        "login.submit": "Log in",
        "login.invalid": "The user name or the password is wrong.",
        "login.missing": "Please enter your user name and your password.",
        "login.expired": "The login form had expired. Please try again.",
        "help": "Help",
        "banned.title": "Please wait",
        "banned.heading": "Too many failed attempts",
        "banned.text": "Please try again in {minutes} minutes.",
        "banned.text_one": "Please try again in a minute.",
        "unavailable.title": "Login not possible right now",
        "unavailable.heading": "Logging in does not work right now",
        "unavailable.text": "The school's login service does not answer right now. Your "
        "password was not rejected: please try again in a minute.",
        "retry": "Try again",
        "challenge.title": "Login required",
        "challenge.heading": "Login required",
        "challenge.text": "This lesson is only open to members of the school. "
        "Please log in with your school account.",
        "forbidden.title": "No access",
        "forbidden.heading": "No access to lessons",
        "forbidden.text": "You are logged in, but your account is neither a teacher's nor "
        "a pupil's account, so it cannot join lessons. If you think this is wrong, "
        "please ask the school office.",
        "not-a-room.title": "Not a room",
        "not-a-room.heading": "Not a room",
        "not-a-room.text": "This address is not a room. Please check the link you were given.",
        "start": "Start page",
        "logout.title": "Log out",
        "logout.heading": "Log out",
        "logout.question": "Do you want to log out of all lessons in this browser?",
        "logout.submit": "Log out",
        "logout.back": "Back to the start page",
        "logout.expired": "The form had expired. Please press the button again.",
        "logged_out.title": "Logged out",
        "logged_out.heading": "You are logged out",
        "logged_out.text": "You are logged out. To join a lesson again, open its link and log in.",
        "logged_out.nobody": "You are logged out: nobody is logged in in this browser.",
        "logged_in_as": "Logged in as {name}",
        "error.title": "Something went wrong",
        "error.heading": "Something went wrong",
        "error.text": "The request could not be handled. Please try again.",
        "waiting.title": "Waiting for the lesson",
        "waiting.heading": "The lesson has not started yet",
        "waiting.text": "You will be let in as soon as the lesson begins.",
        "waiting.checks": "This page checks again by itself every few seconds. Just keep it open.",
        "waiting.now": "Check now",
        "waiting.open": "The lesson has begun. Letting you in now.",
        "start.title": "Lessons",
        "start.heading": "Lessons",
        "start.you": "Logged in as {name} ({role}).",
        "start.figures": "Right now: {rooms} with {people}.",
        "start.rooms_one": "{count} lesson",
        "start.rooms_other": "{count} lessons",
        "start.people_one": "{count} participant",
        "start.people_other": "{count} participants",
        "start.figures_unknown": "Right now: unknown (the video service does not answer).",
        "start.figures_more": "More figures",
        "start.room_label": "Room",
        "start.go": "Go to the room",
        "start.not_a_room": "That is not a room name. Please check it.",
        "start.open_browser": "Open in the browser",
        "start.open_app": "Open in the {app} app",
        "start.ios": "iPhone / iPad",
        "start.android": "Android",
        "start.copy_label": "Link for the app (to paste into it)",
        "start.copy_warning": "This link logs you into the lesson with your name: "
        "do not pass it on.",
        "start.waiting": "The lesson has not started yet. The links for the app appear here "
        "by themselves as soon as it begins; in the browser you can wait in the room already.",
        "start.open": "The lesson has begun: the links for the app are here now.",
        "start.logout": "Log out",
        "statistics.title": "Figures",
        "statistics.heading": "Lessons right now",
        "statistics.rooms": "Lessons",
        "statistics.people": "Participants",
        "statistics.unknown": "Unknown right now: the video service does not answer. "
        "Please try again in a minute.",
        "statistics.teachers_only": "The figures are for teachers.",
        "guest.title": "Invitation",
        "guest.heading": "Invitation to a lesson",
        "guest.invited_by": "Invited by {name},",
        "guest.until": "valid until {until}.",
        "guest.name": "Your name",
        "guest.name_hint": "Everybody in the lesson sees it, marked as a guest.",
        "guest.enter": "Join as a guest",
        "guest.name_wrong": (
            "Please enter your name: at most 64 characters, with a letter or digit "
            "and nothing invisible."
        ),
        "guest.suffix": "(guest)",
        "guest.logged_in": "You are logged in as {name}. To join as a guest, log out first.",
        "guest.links_heading": "Guest links",
        "guest.links_intro": "For parents and guest speakers: a link into one room, "
        "no account needed.",
        "guest.days": "Valid for how many days (at most {max})",
        "guest.create": "Create a guest link",
        "guest.created": "The guest link is ready. Copy it or share it:",
        "guest.copy": "Copy the link",
        "guest.copied": "The link is copied.",
        "guest.share": "Share",
        "guest.share_title": "Invitation to {room}",
        "guest.link_for": "Guest link for {room}",
        "guest.created_at": "Created {when}.",
        "guest.withdraw": "Withdraw",
        "guest.withdraw_question": "Withdraw the guest link for {room}? Whoever has it "
        "can no longer get in.",
        "guest.withdraw_yes": "Yes, withdraw",
        "guest.withdraw_no": "No, keep it",
        "guest.withdrawn_done": "The guest link for {room} is withdrawn.",
        "guest.withdraw_gone": "That guest link is gone already (withdrawn or expired).",
        "guest.altered": "This invitation link is not valid. Please check that it was copied "
        "completely.",
        "guest.expired": "This invitation has expired. Please ask for a new one.",
        "guest.withdrawn": "This invitation has been withdrawn.",
        "guest-invalid.title": "Invitation not valid",
        "guest-invalid.heading": "The invitation is not valid",
        "guest-invalid.text": "This invitation is no longer valid. Please ask for a new one.",
        "guest-withdraw.title": "Withdraw a guest link",
        "guest-withdraw.heading": "Withdraw the guest link?",
        "guest-withdrawn.title": "Guest link withdrawn",
        "guest-withdrawn.heading": "Guest link withdrawn",
        "wrong-room.title": "Another room",
        "wrong-room.heading": "Your invitation is for another room",
        "wrong-room.text": "Your invitation is for the room {room}.",
        "wrong-room.text_unknown": "Your invitation is for another room.",
        "wrong-room.go": "Go to that room",
        "guest-home.title": "Invitation",
        "guest-home.heading": "Invited as a guest",
        "logged-in.title": "Logged in already",
        "logged-in.heading": "Logged in already",
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
    # German as the school chooses to address people ([site] address): "Sie" here,
    # the "du" forms in DU below; most texts need neither.
    "de": {
        "login.title": "Anmelden",
        "login.heading": "Anmelden, um am Unterricht teilzunehmen",
        "login.room": "Raum: {room}",
        "login.intro": "Bitte mit dem Konto der Schule anmelden.",
        "login.username": "Benutzername",
        "login.password": "Passwort",
        "login.submit": "Anmelden",
        "login.invalid": "Benutzername oder Passwort ist falsch.",
        "login.missing": "Bitte Benutzername und Passwort eingeben.",
        "login.expired": "Das Anmeldeformular war abgelaufen. Bitte noch einmal versuchen.",
        "help": "Hilfe",
        "banned.title": "Bitte warten",
        "banned.heading": "Zu viele Fehlversuche",
        "banned.text": "Bitte in {minutes} Minuten noch einmal versuchen.",
        "banned.text_one": "Bitte in einer Minute noch einmal versuchen.",
        "unavailable.title": "Anmelden gerade nicht möglich",
        "unavailable.heading": "Anmelden klappt gerade nicht",
        "unavailable.text": "Die Anmeldung der Schule antwortet gerade nicht. Das Passwort "
        "ist nicht falsch: Bitte in einer Minute noch einmal versuchen.",
        "retry": "Noch einmal versuchen",
        "challenge.title": "Anmeldung nötig",
        "challenge.heading": "Anmeldung nötig",
        "challenge.text": "Dieser Unterricht ist nur für Mitglieder der Schule. "
        "Bitte mit dem Konto der Schule anmelden.",
        "forbidden.title": "Kein Zugang",
        "forbidden.heading": "Kein Zugang zum Unterricht",
        "forbidden.text": "Die Anmeldung hat geklappt, aber dieses Konto gehört weder einer "
        "Lehrkraft noch einer Schülerin oder einem Schüler und kann daher nicht am "
        "Unterricht teilnehmen. Falls das ein Irrtum ist, bitte im Sekretariat fragen.",
        "not-a-room.title": "Kein Raum",
        "not-a-room.heading": "Kein Raum",
        "not-a-room.text": "Diese Adresse ist kein Raum. Bitte den Link prüfen.",
        "start": "Startseite",
        "logout.title": "Abmelden",
        "logout.heading": "Abmelden",
        "logout.question": "Von allen Räumen in diesem Browser abmelden?",
        "logout.submit": "Abmelden",
        "logout.back": "Zurück zur Startseite",
        "logout.expired": "Das Formular war abgelaufen. Bitte den Knopf noch einmal drücken.",
        "logged_out.title": "Abgemeldet",
        "logged_out.heading": "Abgemeldet",
        "logged_out.text": "Die Abmeldung hat geklappt. Um wieder am Unterricht "
        "teilzunehmen, den Link des Raums öffnen und anmelden.",
        "logged_out.nobody": "Abgemeldet: In diesem Browser ist niemand angemeldet.",
        "logged_in_as": "Angemeldet als {name}",
        "error.title": "Etwas ist schiefgegangen",
        "error.heading": "Etwas ist schiefgegangen",
        "error.text": "Das hat nicht geklappt. Bitte noch einmal versuchen.",
        "waiting.title": "Warten auf den Unterricht",
        "waiting.heading": "Der Unterricht hat noch nicht begonnen",
        "waiting.text": "Es geht von selbst los, sobald der Unterricht beginnt.",
        "waiting.checks": "Diese Seite prüft alle paar Sekunden von selbst. Lassen Sie sie "
        "einfach offen.",
        "waiting.now": "Jetzt prüfen",
        "waiting.open": "Der Unterricht hat begonnen. Es geht los.",
        "start.title": "Unterricht",
        "start.heading": "Unterricht",
        "start.you": "Angemeldet als {name} ({role}).",
        "start.figures": "Gerade: {rooms} mit {people}.",
        "start.rooms_one": "{count} Raum",
        "start.rooms_other": "{count} Räume",
        "start.people_one": "{count} Person",
        "start.people_other": "{count} Personen",
        "start.figures_unknown": "Gerade: unbekannt (der Videodienst antwortet nicht).",
        "start.figures_more": "Mehr Zahlen",
        "start.room_label": "Raum",
        "start.go": "Zum Raum",
        "start.not_a_room": "Das ist kein Raumname. Bitte prüfen.",
        "start.open_browser": "Im Browser öffnen",
        "start.open_app": "In der App {app} öffnen",
        "start.ios": "iPhone / iPad",
        "start.android": "Android",
        "start.copy_label": "Link für die App (zum Einfügen)",
        "start.copy_warning": "Dieser Link meldet Sie mit Ihrem Namen im Unterricht an: "
        "bitte nicht weitergeben.",
        "start.waiting": "Der Unterricht hat noch nicht begonnen. Die Links für die App "
        "erscheinen hier von selbst, sobald er beginnt. Im Browser können Sie schon im Raum "
        "warten.",
        "start.open": "Der Unterricht hat begonnen: Die Links für die App sind jetzt da.",
        "start.logout": "Abmelden",
        "statistics.title": "Zahlen",
        "statistics.heading": "Unterricht gerade",
        "statistics.rooms": "Räume",
        "statistics.people": "Personen",
        "statistics.unknown": "Gerade unbekannt: Der Videodienst antwortet nicht. "
        "Bitte in einer Minute noch einmal versuchen.",
        "statistics.teachers_only": "Die Zahlen sind für Lehrkräfte.",
        "guest.title": "Einladung",
        "guest.heading": "Einladung zum Unterricht",
        "guest.invited_by": "Eingeladen von {name},",
        "guest.until": "gültig bis {until}.",
        "guest.name": "Name",
        "guest.name_hint": "Alle im Unterricht sehen ihn, als Gast gekennzeichnet.",
        "guest.enter": "Als Gast teilnehmen",
        "guest.name_wrong": (
            "Bitte einen Namen eingeben: höchstens 64 Zeichen, mit einem Buchstaben "
            "oder einer Ziffer und nichts Unsichtbarem."
        ),
        "guest.suffix": "(Gast)",
        "guest.logged_in": "Angemeldet als {name}. Um als Gast teilzunehmen, bitte zuerst "
        "abmelden.",
        "guest.links_heading": "Gästelinks",
        "guest.links_intro": "Für Eltern und Gäste: ein Link in einen Raum, ohne Konto.",
        "guest.days": "Wie viele Tage gültig (höchstens {max})",
        "guest.create": "Gästelink erstellen",
        "guest.created": "Der Gästelink ist fertig. Jetzt kopieren oder teilen:",
        "guest.copy": "Link kopieren",
        "guest.copied": "Der Link ist kopiert.",
        "guest.share": "Teilen",
        "guest.share_title": "Einladung in den Raum {room}",
        "guest.link_for": "Gästelink für {room}",
        "guest.created_at": "Erstellt am {when}.",
        "guest.withdraw": "Zurückziehen",
        "guest.withdraw_question": "Den Gästelink für {room} zurückziehen? Wer ihn hat, "
        "kommt dann nicht mehr hinein.",
        "guest.withdraw_yes": "Ja, zurückziehen",
        "guest.withdraw_no": "Nein, behalten",
        "guest.withdrawn_done": "Der Gästelink für {room} ist zurückgezogen.",
        "guest.withdraw_gone": "Diesen Gästelink gibt es nicht mehr (zurückgezogen oder "
        "abgelaufen).",
        "guest.altered": "Dieser Einladungslink ist ungültig. Bitte prüfen, ob er vollständig "
        "kopiert wurde.",
        "guest.expired": "Diese Einladung ist abgelaufen. Bitte um eine neue bitten.",
        "guest.withdrawn": "Diese Einladung wurde zurückgezogen.",
        "guest-invalid.title": "Einladung ungültig",
        "guest-invalid.heading": "Die Einladung ist nicht gültig",
        "guest-invalid.text": "Diese Einladung gilt nicht mehr. Bitte um eine neue bitten.",
        "guest-withdraw.title": "Gästelink zurückziehen",
        "guest-withdraw.heading": "Gästelink zurückziehen?",
        "guest-withdrawn.title": "Gästelink zurückgezogen",
        "guest-withdrawn.heading": "Gästelink zurückgezogen",
        "wrong-room.title": "Anderer Raum",
        "wrong-room.heading": "Die Einladung gilt für einen anderen Raum",
        "wrong-room.text": "Die Einladung gilt für den Raum {room}.",
        "wrong-room.text_unknown": "Die Einladung gilt für einen anderen Raum.",
        "wrong-room.go": "Zu diesem Raum",
        "guest-home.title": "Einladung",
        "guest-home.heading": "Als Gast eingeladen",
        "logged-in.title": "Schon angemeldet",
        "logged-in.heading": "Schon angemeldet",
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
        "Abmeldung aber nicht speichern (vielleicht ist sein Speicher voll): Dieselbe Anmeldung "
        "anderswo könnte nach einem Neustart des Dienstes wieder gelten. Bitte der "
        "Administration der Schule Bescheid sagen.",
    },
}

# The German texts that speak to the reader, as a school that says "du" has them.
DU: dict[str, str] = {
    "login.intro": "Bitte mit deinem Konto der Schule anmelden.",
    "waiting.checks": "Diese Seite prüft alle paar Sekunden von selbst. Lass sie einfach offen.",
    "start.copy_warning": "Dieser Link meldet dich mit deinem Namen im Unterricht an: "
    "bitte nicht weitergeben.",
    "start.waiting": "Der Unterricht hat noch nicht begonnen. Die Links für die App "
    "erscheinen hier von selbst, sobald er beginnt. Im Browser kannst du schon im Raum warten.",
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
    """``t("key", name=...)`` in one language, addressing people as the school chose."""

    def __init__(self, language: Language, address: Address = "Sie") -> None:
        self.language = language
        self._texts = {**TEXTS[language], **(DU if language == "de" and address == "du" else {})}

    def __call__(self, key: str, **values: object) -> str:
        return self._texts[key].format(**values)

    def count(self, key: str, count: int, **values: object) -> str:
        """``key_one`` for one, ``key_other`` for any other number (both languages' rule)."""
        return self(f"{key}_one" if count == 1 else f"{key}_other", count=count, **values)
