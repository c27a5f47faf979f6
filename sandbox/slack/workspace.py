"""The seeded workspace: the one place that defines its team, users, user groups and channels."""

from __future__ import annotations

from dataclasses import dataclass

TEAM_ID = "T0UNICORN"
TEAM_DOMAIN = "unicorn-watch"
TEAM_NAME = "Unicorn Watch"
BOT_USER_ID = "U0DEPLOYBOT"
BOT_ID = "B0DEPLOYBOT"
APP_ID = "A0DEPLOYBOT"
BOT_NAME = "deploybot"

ALICE = "U0ALICE"
BOB = "U0BOB"
CAROL = "U0CAROL"
DAVE = "U0DAVE"

APPROVERS_GROUP = "S0APPROVERS"
ONCALL_GROUP = "S0ONCALL"

DEPLOYS_CHANNEL = "C0DEPLOYS"
INCIDENT_CHANNEL = "C0INC42"


@dataclass(frozen=True)
class User:
    """A workspace member."""

    id: str
    name: str
    real_name: str
    title: str
    color: str
    is_bot: bool = False


@dataclass(frozen=True)
class UserGroup:
    """A user group (`<!subteam^S…>` in mrkdwn)."""

    id: str
    handle: str
    name: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class Channel:
    """A conversation: public or private channel, a DM (with the bot, or between people), or a group DM."""

    id: str
    name: str
    members: tuple[str, ...]
    is_im: bool = False
    im_user: str | None = None  # the person in a DM with the bot
    topic: str = ""
    is_private: bool = False
    is_mpim: bool = False
    is_archived: bool = False

    @property
    def bot_is_member(self) -> bool:
        """True when the bot is in the conversation."""
        return BOT_USER_ID in self.members

    @property
    def visible_to_bot(self) -> bool:
        """Public channels are visible to every app; private ones, DMs and group DMs only to their members."""
        return self.bot_is_member or not (self.is_private or self.is_im or self.is_mpim)


BOT = User(BOT_USER_ID, BOT_NAME, "DeployBot", "Deploys to Amazon ECS", "#4a154b", is_bot=True)

USERS: tuple[User, ...] = (
    User(ALICE, "alice", "Alice Archer", "Developer", "#2eb67d"),
    User(BOB, "bob", "Bob Baker", "Platform approver", "#1264a3"),
    User(CAROL, "carol", "Carol Chen", "On-call SRE", "#e01e5a"),
    User(DAVE, "dave", "Dave Dunn", "Not a deployer", "#ecb22e"),
)

USER_GROUPS: tuple[UserGroup, ...] = (
    UserGroup(APPROVERS_GROUP, "platform-approvers", "Platform approvers", (BOB, CAROL)),
    UserGroup(ONCALL_GROUP, "oncall", "On-call", (CAROL,)),
)

HUMAN_IDS = tuple(u.id for u in USERS)

CHANNELS: tuple[Channel, ...] = (
    Channel(DEPLOYS_CHANNEL, "deploys", (*HUMAN_IDS, BOT_USER_ID), topic="Deployments to ECS"),
    # Dave is deliberately not in the incident channel, so ephemerals to him there fail like Slack's.
    Channel(INCIDENT_CHANNEL, "incident-42", (ALICE, BOB, CAROL, BOT_USER_ID), topic="checkout errors"),
)


RANDOM_CHANNEL = "C0RANDOM"  # public, the bot was never invited
HIDDEN_CHANNEL = "C0HIDDEN"  # private, without the bot
PRIVATE_DEPLOYS_CHANNEL = "C0PRIVDEPLOY"  # private, with the bot
ARCHIVED_CHANNEL = "C0OLDDEPLOYS"  # archived, the bot was a member
PEOPLE_DM = "D0ALICEBOB"  # a DM between two people: no app can see it
GROUP_DM = "C0MPDMABC"  # a group DM between three people

# Conversations the page does not list (it shows what every seeded person can open); tests use them to be
# strict about where the bot can and cannot post.
OTHER_CHANNELS: tuple[Channel, ...] = (
    Channel(RANDOM_CHANNEL, "random", HUMAN_IDS, topic="Anything goes"),
    Channel(HIDDEN_CHANNEL, "hidden-project", (ALICE, BOB, CAROL), is_private=True),
    Channel(PRIVATE_DEPLOYS_CHANNEL, "private-deploys", (ALICE, BOB, CAROL, BOT_USER_ID), is_private=True),
    Channel(ARCHIVED_CHANNEL, "old-deploys", (*HUMAN_IDS, BOT_USER_ID), is_archived=True),
    Channel(PEOPLE_DM, "directmessage", (ALICE, BOB), is_im=True, is_private=True),
    Channel(GROUP_DM, "mpdm-alice--bob--carol-1", (ALICE, BOB, CAROL), is_mpim=True, is_private=True),
)


def dm_channel_id(user_id: str) -> str:
    """The id of the DM between a user and the bot (`U0ALICE` → `D0ALICE`)."""
    return "D" + user_id[1:]


DM_CHANNELS: tuple[Channel, ...] = tuple(
    Channel(dm_channel_id(u.id), u.name, (u.id, BOT_USER_ID), is_im=True, im_user=u.id) for u in USERS
)

ALL_USERS: dict[str, User] = {u.id: u for u in (*USERS, BOT)}
ALL_CHANNELS: dict[str, Channel] = {c.id: c for c in (*CHANNELS, *DM_CHANNELS, *OTHER_CHANNELS)}
GROUPS_BY_ID: dict[str, UserGroup] = {g.id: g for g in USER_GROUPS}


def find_channel(ref: str) -> Channel | None:
    """Resolve a channel id, `#name`, name, or a user id (meaning the bot's DM with that user)."""
    if ref in ALL_CHANNELS:
        return ALL_CHANNELS[ref]
    if ref in ALL_USERS and not ALL_USERS[ref].is_bot:
        return ALL_CHANNELS[dm_channel_id(ref)]
    name = ref.removeprefix("#")
    return next((c for c in (*CHANNELS, *OTHER_CHANNELS) if c.name == name and not c.is_im), None)


def bot_channel(ref: str) -> Channel | None:
    """The conversation a Web API call names, as the bot sees it: None where Slack says `channel_not_found`."""
    channel = find_channel(ref)
    return channel if channel is not None and channel.visible_to_bot else None


def user_json(user: User) -> dict[str, object]:
    """A user object shaped like `users.info` returns it."""
    profile = {
        "real_name": user.real_name,
        "display_name": user.name,
        "title": user.title,
        "image_48": "",
        "team": TEAM_ID,
        **({"bot_id": BOT_ID, "api_app_id": APP_ID} if user.is_bot else {}),
    }
    return {
        "id": user.id,
        "team_id": TEAM_ID,
        "name": user.name,
        "real_name": user.real_name,
        "deleted": False,
        "color": user.color.lstrip("#"),
        "tz": "Europe/Berlin",
        "tz_label": "Central European Time",
        "tz_offset": 3600,
        "is_admin": False,
        "is_bot": user.is_bot,
        "is_app_user": False,
        "profile": profile,
    }


def channel_json(channel: Channel) -> dict[str, object]:
    """A conversation object shaped like `conversations.info` returns it."""
    base: dict[str, object] = {"id": channel.id, "created": 1700000000, "is_archived": channel.is_archived}
    if channel.is_im:
        return {**base, "is_im": True, "user": channel.im_user, "is_user_deleted": False, "is_org_shared": False}
    return {
        **base,
        "name": channel.name,
        "name_normalized": channel.name,
        "is_channel": not (channel.is_private or channel.is_mpim),
        "is_group": channel.is_private and not channel.is_mpim,
        "is_im": False,
        "is_mpim": channel.is_mpim,
        "is_private": channel.is_private,
        "is_general": False,
        "is_member": channel.bot_is_member,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "creator": ALICE,
        "topic": {"value": channel.topic, "creator": ALICE, "last_set": 1700000000},
        "purpose": {"value": "", "creator": "", "last_set": 0},
        "num_members": len(channel.members),
    }


def workspace_json() -> dict[str, object]:
    """The workspace as the page needs it: team, users, groups, channels."""
    return {
        "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN, "name": TEAM_NAME},
        "bot": {"user_id": BOT_USER_ID, "bot_id": BOT_ID, "app_id": APP_ID, "name": BOT.real_name},
        "users": [
            {
                "id": u.id,
                "name": u.name,
                "real_name": u.real_name,
                "title": u.title,
                "color": u.color,
                "is_bot": u.is_bot,
            }
            for u in (*USERS, BOT)
        ],
        "groups": [{"id": g.id, "handle": g.handle, "name": g.name, "users": list(g.users)} for g in USER_GROUPS],
        "channels": [{"id": c.id, "name": c.name, "topic": c.topic, "members": list(c.members)} for c in CHANNELS],
        "dms": {c.im_user: c.id for c in DM_CHANNELS},
    }
