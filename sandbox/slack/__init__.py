"""A local Slack stand-in: Web API, signed requests to the bot, and a Slack-like page."""
