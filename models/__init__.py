"""The typed ORM: deployments, their events, decisions, locks and the Slack outbox."""

from models.base import Base, utcnow
from models.deployment import Deployment, DeploymentEvent
from models.records import Decision, Outbox, ServiceLock, SlackPace

__all__ = ["Base", "Decision", "Deployment", "DeploymentEvent", "Outbox", "ServiceLock", "SlackPace", "utcnow"]
