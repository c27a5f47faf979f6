"""Where a deployment is narrated, by what Slack says of the channel it was asked from (and of its home)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.domain.catalog.schema import ServiceConfig
from bot.domain.enums import ChannelAccess
from bot.domain.narration import Narration, narration
from tests.support import example_catalog

P, D, A, H, U = (
    ChannelAccess.POSTABLE,
    ChannelAccess.DIRECT,
    ChannelAccess.ARCHIVED,
    ChannelAccess.HIDDEN,
    ChannelAccess.UNKNOWN,
)
HOMELESS = example_catalog().services["orders"]  # no channels listed
HOMED = replace(HOMELESS, channels=("C0HOME", "C0HERE"))


@pytest.mark.parametrize(
    ("service", "here", "home", "channel", "words"),
    [
        (HOMELESS, P, P, "C0HERE", ""),
        (HOMED, P, H, "C0HERE", ""),
        (HOMELESS, H, P, None, "`/invite @DeployBot` to this channel"),
        (HOMED, H, P, "C0HOME", "so I'm narrating it in <#C0HOME>"),
        (HOMED, H, H, None, "`/invite @DeployBot`"),
        (HOMED, A, P, "C0HOME", "This channel is archived, so I'm narrating it in <#C0HOME>"),
        (HOMELESS, A, P, None, "archived, so I started nothing. Run it in a channel"),
        (HOMELESS, D, P, None, "A DM is no place"),
        (HOMED, D, P, "C0HOME", "narrating it in <#C0HOME>"),
        (HOMED, U, P, None, "couldn't check with Slack"),
        (HOMED, H, U, None, "started nothing"),  # the home channel cannot be vouched for either
    ],
)
def test_where_it_is_narrated(
    service: ServiceConfig, here: ChannelAccess, home: ChannelAccess, channel: str | None, words: str
) -> None:
    access = {"C0HERE": here, "C0HOME": home}
    result = narration(service, "C0HERE", access.__getitem__)
    assert isinstance(result, Narration) and result.channel == channel
    assert words in result.text
