"""Where a deployment's story is told: the channel it was asked from, else the service's home channel (pure).

The root message carries the approval buttons, so a deployment narrated where nobody (or only its requester)
can see it would pause unseen and time out; it is never started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.domain.catalog.schema import ServiceConfig
from bot.domain.enums import ChannelAccess

AccessOf = Callable[[str], ChannelAccess]

HIDDEN_HERE = "I can't post in this conversation (a private channel I'm not in, or a DM)"
ARCHIVED_HERE = "this channel is archived"
DIRECT_HERE = "a DM is no place for a deployment: nobody else would see its thread or approval buttons"
UNKNOWN_HERE = "I couldn't check with Slack whether I can post here, so I started nothing. Try again in a minute."


@dataclass(frozen=True)
class Narration:
    """The channel to narrate in (None: refuse with `text`), and what to tell the person about it."""

    channel: str | None
    text: str = ""


def narration(service: ServiceConfig, channel: str, access_of: AccessOf) -> Narration:
    """Narrate where `/deploy` was typed when the bot can post there; else in the service's home channel, said.

    A DM never narrates: a DM between people is invisible to the bot, and the bot's own DM to everyone else.
    """
    access = access_of(channel)
    if access is ChannelAccess.POSTABLE:
        return Narration(channel)
    if access is ChannelAccess.UNKNOWN:
        return Narration(None, UNKNOWN_HERE)
    why = {ChannelAccess.ARCHIVED: ARCHIVED_HERE, ChannelAccess.DIRECT: DIRECT_HERE}.get(access, HIDDEN_HERE)
    home = service.channels[0] if service.channels else None
    if home is not None and home != channel and access_of(home) is ChannelAccess.POSTABLE:
        return Narration(home, f"{_sentence(why)}, so I'm narrating it in <#{home}>.")
    fix = "`/invite @DeployBot` to this channel, or run it" if access is ChannelAccess.HIDDEN else "Run it"
    return Narration(None, f"{_sentence(why)}, so I started nothing. {fix} in a channel where I can post.")


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]
