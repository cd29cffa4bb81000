"""The subscriber side's rules over the store: sign up, confirm, change, vote, leave.

No I/O but the store: a step that should mail someone returns a ``Notice`` and the caller
(the web app or the CLI) sends it, so sending stays off the request's critical path and the
rules are tested without a mail server. Every token problem is the same ``TokenError``
message, whatever the cause, so a link never reveals whether an address is subscribed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal

from pipeline.config import Config
from pipeline.editions import first_digest
from pipeline.errors import TokenError
from pipeline.ledger import edition_paper_ids, edition_view_links, recorded_selection
from pipeline.links import Links
from pipeline.matching.topics import Catalog, load_catalog
from pipeline.models import (
    DeliveryStatus,
    Frozen,
    Paper,
    Profile,
    Selection,
    Subscriber,
    SubscriberStatus,
)
from pipeline.render import DigestLinks
from pipeline.send import remove_mail_to
from pipeline.store import Store, utcnow
from pipeline.tokens import LEEWAY, Purpose, Tokens
from subscribers.feedback import forget, learn, unlearn
from subscribers.forms import FORM_VERSION, PreferencesData, SignupData
from subscribers.linkstate import CONFIRMS, LinkState, link_state
from subscribers.roster import jsonable

INVALID_LINK = "This link is invalid, has expired or was already used."
S = SubscriberStatus
NoticeKind = Literal["confirm", "welcome", "goodbye"]


class Notice(Frozen):
    """A mail the caller should send: what kind, to whom, and its signed links."""

    kind: NoticeKind
    subscriber_id: int
    to: str
    links: dict[str, str]
    unsubscribe_url: str | None = None
    first_digest: str = ""  # the welcome mail's "tomorrow at 08:00, Europe/Berlin"


class Confirmation(Frozen):
    """What a confirmation post did: the link's state before it; ``notice`` (the welcome
    mail) is set exactly when this post activated the reader."""

    state: LinkState
    subscriber: Subscriber
    notice: Notice | None = None

    @property
    def confirmed(self) -> bool:
        return self.notice is not None


class SubscriberService:
    """Sign-up, double opt-in, preferences, feedback and leaving, for one deployment.

    ``profile_saved`` is told of each profile a reader saves (signing up, confirming, changing
    preferences), after it is stored: the composition root gives its texts their vectors.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        links: Links,
        profile_saved: Callable[[Profile], object] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.links = links
        self.tokens: Tokens = links.tokens
        self.catalog: Catalog = load_catalog(config.topics)
        self.profile_saved = profile_saved

    def _saved(self, sub: Subscriber) -> Subscriber:
        if self.profile_saved is not None:
            self.profile_saved(sub.profile)
        return sub

    # --- signing up --------------------------------------------------------------------------

    def sign_up(
        self, data: SignupData, *, ip: str, now: dt.datetime | None = None
    ) -> Notice | None:
        """Record a sign-up; the mail to send, if any. The caller answers the same either way.

        New or unsubscribed addresses become pending and get a confirmation; a pending one gets
        it again; a subscribed one gets the welcome mail with its preferences link (a lost-link
        recovery). At most one such mail per address per ``web.confirmation_resend_hours``.
        The store runs the same statements for every kind of address, and the posted profile's
        texts get their vectors whichever it is, so the time taken tells nothing either.
        """
        now = now or utcnow()
        profile = Profile(topics=data.topics, interests=data.interests)
        entry = {
            "email": data.email,
            "profile": profile,
            "timezone": data.timezone,
            "send_hour": data.send_hour,
            "frequency": data.frequency,
            "weekly_day": data.weekly_day,
            "consent": {
                "method": "double opt-in",
                "form_version": FORM_VERSION,
                "ip": ip,
                "signed_up_at": now.isoformat(),
            },
        }
        every = dt.timedelta(hours=self.config.web.confirmation_resend_hours)
        sub = self.store.optin.sign_up(entry, every=every, now=now)
        if self.profile_saved is not None:
            self.profile_saved(profile)
        if sub is None:
            return None
        if sub.status == S.PENDING:
            return self.confirm_notice(sub)
        return self.welcome_notice(sub, now)

    def confirm_notice(self, sub: Subscriber) -> Notice:
        return Notice(
            kind="confirm",
            subscriber_id=sub.id,
            to=sub.email,
            links={"confirm": self.links.confirm(sub.id, sub.confirm_epoch)},
            unsubscribe_url=self.links.unsubscribe(sub.id),
        )

    def welcome_notice(self, sub: Subscriber, now: dt.datetime) -> Notice:
        unsubscribe = self.links.unsubscribe(sub.id)
        return Notice(
            kind="welcome",
            subscriber_id=sub.id,
            to=sub.email,
            links={"preferences": self.links.preferences(sub.id), "unsubscribe": unsubscribe},
            unsubscribe_url=unsubscribe,
            first_digest=self.first_digest(sub, now) if sub.last_edition is None else "",
        )

    def first_digest(self, sub: Subscriber, now: dt.datetime) -> str:
        """When a newly confirmed reader's first digest comes, in words."""
        cutoff = dt.timedelta(hours=self.config.delivery.late_cutoff_hours)
        return first_digest(sub, now, cutoff)

    def release_confirmation(self, subscriber_id: int) -> None:
        """The mail could not be handed over: let the next sign-up post try again at once."""
        if self.store.subscribers.get(subscriber_id) is not None:
            self.store.subscribers.update(subscriber_id, confirmation_sent_at=None)

    # --- tokens ------------------------------------------------------------------------------

    def subscriber_for(
        self, purpose: Purpose, token: str, max_age: float | None = None
    ) -> tuple[Subscriber, dict[str, Any]]:
        """The subscriber a valid token names, and its payload; TokenError otherwise."""
        try:
            payload = self.tokens.read(purpose, token, max_age=max_age)
        except TokenError:
            raise TokenError(INVALID_LINK) from None
        sid = payload.get("s")
        if type(sid) is not int:
            raise TokenError(INVALID_LINK)
        sub = self.store.subscribers.get(sid)
        if sub is None:
            raise TokenError(INVALID_LINK)
        return sub, payload

    def csrf_token(self, sub: Subscriber) -> str:
        return self.tokens.make("csrf", s=sub.id)

    def check_csrf(self, sub: Subscriber, token: str, max_age: float) -> bool:
        try:
            payload = self.tokens.read("csrf", token, max_age=max_age)
        except TokenError:
            return False
        return payload.get("s") == sub.id

    # --- double opt-in -----------------------------------------------------------------------

    def link_state(
        self, token: str, now: dt.datetime | None = None
    ) -> tuple[LinkState, Subscriber]:
        """The state of a confirmation link (``subscribers.linkstate``) and its reader;
        TokenError for a link that is not one of ours."""
        state, sub, _ = self._confirm_link(token, now or utcnow())
        return state, sub

    def _confirm_link(self, token: str, now: dt.datetime) -> tuple[LinkState, Subscriber, int]:
        try:
            payload, issued = self.tokens.read_dated("confirm", token, now)
        except TokenError:
            raise TokenError(INVALID_LINK) from None
        sid, epoch = payload.get("s"), payload.get("e", 0)  # links before 0007 carry no epoch
        if type(sid) is not int or type(epoch) is not int:
            raise TokenError(INVALID_LINK)
        sub = self.store.subscribers.get(sid)
        if sub is None:
            raise TokenError(INVALID_LINK)
        max_age = dt.timedelta(days=self.config.web.confirm_token_days) + LEEWAY
        state = link_state(
            sub.status,
            sub.confirm_epoch,
            epoch,
            expired=now - issued > max_age,
            spent=self.store.optin.spent(Tokens.digest(token)),
        )
        return state, sub, epoch

    def confirm(self, token: str, *, ip: str, now: dt.datetime | None = None) -> Confirmation:
        """Confirm through the link if its state allows (spending it and activating the
        reader in one transaction); what happened, and the welcome mail to send if it did."""
        now = now or utcnow()
        state, sub, epoch = self._confirm_link(token, now)
        if state in CONFIRMS:
            extra = {"confirmed_at": now.isoformat(), "confirm_ip": ip}
            done = self.store.optin.confirm(sub.id, epoch, Tokens.digest(token), extra, now)
            if done is not None:
                self._saved(done)
                return Confirmation(
                    state=state, subscriber=done, notice=self.welcome_notice(done, now)
                )
            # Something changed it meanwhile (a concurrent click, an unsubscribe): say what.
            state, sub, _ = self._confirm_link(token, now)
        return Confirmation(state=state, subscriber=sub, notice=None)

    def renew(self, token: str, now: dt.datetime | None = None) -> Notice | None:
        """A new confirmation mail for an expired link's reader, at most one per
        ``web.confirmation_resend_hours``; None for any other state, or within the window."""
        now = now or utcnow()
        state, sub, _ = self._confirm_link(token, now)
        every = dt.timedelta(hours=self.config.web.confirmation_resend_hours)
        if state != LinkState.EXPIRED or not self.store.subscribers.claim_confirmation(
            sub.id, every, now
        ):
            return None
        return self.confirm_notice(sub)

    # --- preferences -------------------------------------------------------------------------

    def save_preferences(self, sub: Subscriber, data: PreferencesData) -> Subscriber:
        profile = Profile.model_validate(
            {
                **sub.profile.model_dump(),
                "topics": data.topics,
                "interests": data.interests,
                "authors": data.authors,
                "exclude": data.exclude,
                "max_papers": data.max_papers,
                "min_upvotes": data.min_upvotes,
            }
        )
        return self._saved(
            self.store.subscribers.update(
                sub.id,
                profile=profile,
                timezone=data.timezone,
                send_hour=data.send_hour,
                frequency=data.frequency,
                weekly_day=data.weekly_day,
            )
        )

    def pause(self, sub: Subscriber, now: dt.datetime | None = None) -> bool:
        changed = self.store.subscribers.change_status(
            sub.id, S.PAUSED, only_from=(S.ACTIVE,), now=now
        )
        self.store.ledger.cancel(sub.id, "paused before sending", now)
        return changed

    def resume(self, sub: Subscriber, now: dt.datetime | None = None) -> bool:
        """Back to active from paused or unsubscribed (the link proves the mailbox is theirs)."""
        return self.store.subscribers.change_status(
            sub.id, S.ACTIVE, only_from=(S.PAUSED, S.UNSUBSCRIBED), now=now
        )

    def unsubscribe(self, sub: Subscriber, now: dt.datetime | None = None) -> Notice | None:
        """Idempotent; nothing queued is sent afterwards. The goodbye mail, if configured."""
        changed = self.store.subscribers.change_status(
            sub.id, S.UNSUBSCRIBED, only_from=(S.PENDING, S.ACTIVE, S.PAUSED), now=now
        )
        self.store.ledger.cancel(sub.id, "unsubscribed before sending", now)
        if changed and self.config.web.goodbye_mail:
            return Notice(
                kind="goodbye",
                subscriber_id=sub.id,
                to=sub.email,
                links={"home": self.links.home()},
            )
        return None

    def export(self, sub: Subscriber) -> dict[str, Any]:
        """Everything stored about the subscriber, as JSON-ready data."""
        record = self.store.subscribers.record(sub.id) or {}
        record.pop("confirmation_sent_at", None)
        data: dict[str, Any] = jsonable(record)
        return data

    def erase(self, sub: Subscriber, reason: str = "erased on request") -> int:
        """Delete the reader, their history and their mails waiting in the outbox folder (so
        ``/outbox`` no longer shows them either); how many outbox files went."""
        self.store.subscribers.delete(sub.id, reason)
        return remove_mail_to(self.config.paths.outbox, sub.email)

    # --- feedback ----------------------------------------------------------------------------

    def vote_target(self, token: str) -> tuple[Subscriber, Paper, int]:
        """Who votes, on which paper, which way; TokenError for anything else."""
        sub, payload = self.subscriber_for("feedback", token)
        vote, paper_id = payload.get("v"), payload.get("p")
        if vote not in (1, -1) or type(vote) is not int or not isinstance(paper_id, str):
            raise TokenError(INVALID_LINK)
        paper = self.store.papers.find(paper_id)  # a mailed link may hold a pre-re-key id
        if paper is None:
            raise TokenError(INVALID_LINK)
        return sub, paper, vote

    def vote(self, token: str, now: dt.datetime | None = None) -> tuple[Subscriber, Paper, int]:
        """Count the vote for the admin and teach the voter's profile its terms."""
        sub, paper, vote = self.vote_target(token)
        profile = learn(self.store, self.catalog, sub.profile, paper, vote)
        self.store.feedback.record_vote(sub.id, paper.id, vote, now)
        sub = self.store.subscribers.update(sub.id, profile=profile)
        return sub, paper, vote

    def undo_vote(self, token: str) -> tuple[Subscriber, Paper, int, bool]:
        """Take back the vote the link cast, and what it taught the profile; the flag is False
        when that vote was not (or no longer) the one stored, and nothing changed."""
        sub, paper, vote = self.vote_target(token)
        if not self.store.feedback.remove_vote(sub.id, paper.id, vote):
            return sub, paper, vote, False
        profile = unlearn(self.store, self.catalog, sub.profile, sub.id)
        return self.store.subscribers.update(sub.id, profile=profile), paper, vote, True

    def forget_term(self, sub: Subscriber, term: str) -> Subscriber | None:
        """The subscriber with a learned term removed for good; None if it was not there."""
        profile = forget(sub.profile, term)
        if profile == sub.profile:
            return None
        return self.store.subscribers.update(sub.id, profile=profile)

    # --- the web view ------------------------------------------------------------------------

    def edition(self, token: str) -> tuple[Subscriber, Selection, DigestLinks]:
        """What the edition link shows: the papers the email showed, in order, with their
        recorded scores and reasons, then the further matches the ledger kept ("N more")."""
        sub, payload = self.subscriber_for("edition", token)
        try:
            day = dt.date.fromisoformat(str(payload.get("d")))
        except ValueError:
            raise TokenError(INVALID_LINK) from None
        delivery = self.store.ledger.get(sub.id, day)
        if delivery is None or delivery.status == DeliveryStatus.SKIPPED:
            raise TokenError(INVALID_LINK)
        ids = edition_paper_ids(delivery)
        selection = recorded_selection(delivery, self.store.papers.by_ids(ids))
        return sub, selection, edition_view_links(self.links, selection)
